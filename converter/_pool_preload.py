"""Imported by ``convert migrate``'s forkserver (``migration._PRELOAD``): the registry is built
there once, plugins loaded as in the migrating process, so every worker forked from it starts
with it built instead of loading the plugins again before its first store.

The migrating process has already said what each plugin's failure is; the forkserver saying it
again would repeat each warning."""

import warnings

from .plugin_manager import PluginWarning
from .registry import get_registry

with warnings.catch_warnings():
    warnings.simplefilter("ignore", PluginWarning)
    get_registry()
