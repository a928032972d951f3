"""Imported by ``convert migrate``'s forkserver (``migration._PRELOAD``): the registry is built
there once, plugins loaded as in the migrating process, so every worker forked from it starts
with it built instead of loading the plugins again before its first store.

The migrating process has already said what each plugin's failure is; the forkserver saying it
again would repeat each warning."""

import signal

# Ctrl-C reaches the forkserver with the rest of the group; while it starts and imports it would
# die with a traceback (it ignores SIGINT only after its imports), so it is started with SIGINT
# blocked and ignores it from here on; each worker forked from it handles SIGINT itself once it
# starts (migration._ready).
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked while it started (migration._pool)

import warnings  # noqa: E402

from .plugin_manager import PluginWarning  # noqa: E402
from .registry import get_registry  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore", PluginWarning)
    get_registry()
