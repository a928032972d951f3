"""Loading plugins, designed once: each plugin on its own, so one broken plugin breaks nothing else.

Built-in plugins (``registry.BUILTIN_PLUGINS``) are imported directly. Third-party plugins are
the ``converter`` entry points of installed distributions. Each is imported, registered with
pluggy and checked against the hook specs on its own; a plugin that fails to import, misspells
a hook or one of its arguments, or (later, in ``Registry``) raises in its hook, is left out with
one ``PluginWarning`` naming the distribution, its version, what failed and how to turn it off.
``CONVERTER_PLUGINS_STRICT=1`` makes any plugin failure a ``PluginError`` instead, for plugin
authors' CI.

Environment, by entry-point name or distribution name (comma-separated):

- ``CONVERTER_LOAD_PLUGINS`` unset: every installed plugin; a list: only those; empty: none
  (the test suite sets it empty).
- ``CONVERTER_DISABLE_PLUGINS``: never these.

A name in either list that matches no installed plugin is a warning.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field

import pluggy

from . import hookspecs
from .errors import PluginError

GROUP = "converter"

# The plugin API this core provides (docs/plugins.md): the hooks, Format, Codec, the errors and
# converter.fileio. A plugin module may declare CONVERTER_PLUGIN_API = N; one that needs a
# newer API than this is left out with a warning instead of failing in some later call.
PLUGIN_API = 1


class PluginWarning(UserWarning):
    """A plugin was left out (it failed, or a name to load or disable matched nothing)."""


@dataclass
class PluginInfo:
    """What ``convert plugins`` shows for one plugin."""

    name: str  # the entry-point name (or the built-in module's name)
    distribution: str = ""
    version: str = ""
    entry_point: str = ""  # "module" or "module:attribute"
    builtin: bool = False
    status: str = "loaded"  # loaded, failed, disabled
    error: str = ""
    formats: list = field(default_factory=list)
    codecs: list = field(default_factory=list)
    conflicts: list = field(default_factory=list)  # what this plugin asked for that a built-in keeps

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("name", "distribution", "version", "entry_point", "builtin",
                                             "status", "error", "formats", "codecs", "conflicts")}


def strict() -> bool:
    return os.environ.get("CONVERTER_PLUGINS_STRICT", "") not in ("", "0")


def normalise(name: str) -> str:
    """A distribution (or entry-point) name as pip compares them (PEP 503): case-insensitive,
    every run of - _ . the same."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _names(var: str) -> list[str] | None:
    value = os.environ.get(var)
    if value is None:
        return None
    return [n.strip() for n in value.split(",") if n.strip()]


def fail(info: PluginInfo, what: str) -> None:
    """Record a plugin failure: a warning (or, strict, an error) naming it and how to turn it off."""
    what = " ".join(what.split())  # one line (pluggy's messages span several)
    prefix = f'plugin "{info.name}"'
    if what.startswith(prefix):  # a registry message that names the plugin already
        what = what[len(prefix):].lstrip(": ")
    info.status, info.error = "failed", what
    label = f"plugin {info.name!r}" + (f" ({info.distribution} {info.version})" if info.distribution else "")
    off = info.distribution or info.name
    if strict():
        raise PluginError(f"{label} {what} (an error because CONVERTER_PLUGINS_STRICT is set; "
                          f"CONVERTER_DISABLE_PLUGINS={off} turns the plugin off)")
    warnings.warn(f"{label} {what}; it is left out (CONVERTER_DISABLE_PLUGINS={off} turns it off, "
                  f"CONVERTER_PLUGINS_STRICT=1 makes this an error)", PluginWarning, stacklevel=3)


def _register(pm: pluggy.PluginManager, plugin, info: PluginInfo) -> bool:
    needed = getattr(plugin, "CONVERTER_PLUGIN_API", PLUGIN_API)
    if not isinstance(needed, int) or isinstance(needed, bool):
        fail(info, f"declares CONVERTER_PLUGIN_API = {needed!r}, a {type(needed).__name__}; it must be an int "
                   f"(this converter-toolkit provides {PLUGIN_API})")
        return False
    if needed > PLUGIN_API:
        fail(info, f"needs plugin API {needed!r}, and this converter-toolkit provides {PLUGIN_API}; "
                   f"upgrade converter-toolkit")
        return False
    try:
        pm.register(plugin, name=info.name)
    except Exception as exc:  # pluggy's validation (a hook argument not in the spec), or a clash
        fail(info, f"cannot be registered: {exc}")
        return False
    try:
        pm.check_pending()  # a hookimpl for a hook that does not exist (a misspelled name)
    except Exception as exc:
        pm.unregister(plugin)
        fail(info, f"implements no such hook: {exc}")
        return False
    if not pm.get_hookcallers(plugin):  # no @hookimpl at all: the entry point names the wrong module?
        pm.unregister(plugin)
        fail(info, "implements neither register_formats nor register_codecs (no @hookimpl function in "
                   f"{getattr(plugin, '__name__', plugin)!r}), so it registers nothing")
        return False
    return True


def make(builtins, load_entrypoints: bool | None = None):
    """A plugin manager with the built-ins and the installed plugins that load, and a PluginInfo
    per plugin (failed and disabled ones included)."""
    import importlib

    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    infos: dict[str, PluginInfo] = {}
    version = getattr(importlib.import_module("converter"), "__version__", "")
    for modname in builtins:
        infos[modname] = PluginInfo(name=modname, distribution="converter-toolkit", version=version, builtin=True,
                                    entry_point=modname)
        pm.register(importlib.import_module(modname), name=modname)
    pm.converter_plugins = infos  # what Registry(pm) describes each plugin with
    wanted = _names("CONVERTER_LOAD_PLUGINS")
    if load_entrypoints is None:
        load_entrypoints = wanted != []
    elif load_entrypoints and wanted == []:
        wanted = None  # asked for explicitly: every installed plugin
    if not load_entrypoints:
        return pm, infos
    from .registry import _group_declared

    disabled = _names("CONVERTER_DISABLE_PLUGINS") or []
    if not _group_declared() and not wanted and not disabled:
        return pm, infos
    from importlib.metadata import entry_points

    try:
        found = list(entry_points(group=GROUP))
    except TypeError:  # Python 3.9's entry_points() takes no group
        found = list(entry_points().get(GROUP, []))
    from .guard import LOAD_SECONDS, PluginTimeout, interrupts, own_environment, plugin_stdout, time_limit

    matched = set()
    wanted_n = {normalise(n) for n in wanted or ()}
    disabled_n = {normalise(n) for n in disabled}
    for ep in found:
        dist = getattr(ep, "dist", None)
        dist_name = dist.metadata["Name"] if dist is not None else ""
        version = dist.version if dist is not None else ""
        info = infos.setdefault(ep.name, PluginInfo(name=ep.name, distribution=dist_name, version=version,
                                                   entry_point=ep.value))
        names = {normalise(n) for n in (ep.name, dist_name) if n}
        off, on = names & disabled_n, names & wanted_n
        matched |= off | on  # a name to load that is also disabled is installed: no "no such plugin"
        if off or (wanted is not None and not on):
            info.status = "disabled"
            continue
        with interrupts() as ctrl_c:
            try:
                with plugin_stdout(), own_environment(), time_limit(LOAD_SECONDS, f"the import of plugin {ep.name!r}",
                                                                     dist_name or ep.name):
                    # (plugin_stdout: an import-time print() must not reach stdout's data)
                    plugin = ep.load()
                exc = None
            except BaseException as raised:  # noqa: BLE001 - an import can raise anything, SystemExit too
                exc = raised
        if exc is not None:
            if isinstance(exc, KeyboardInterrupt) and ctrl_c.real:
                raise exc
            fail(info, f"failed to import: {type(exc).__name__}: {exc}" if not isinstance(exc, PluginTimeout)
                 else f"{exc} while importing")
            continue
        _register(pm, plugin, info)
    for name in [*(wanted or []), *disabled]:
        if normalise(name) not in matched:
            warnings.warn(f"no installed plugin is called {name!r} (CONVERTER_LOAD_PLUGINS / "
                          f"CONVERTER_DISABLE_PLUGINS name entry points or distributions)", PluginWarning,
                          stacklevel=2)
    return pm, infos
