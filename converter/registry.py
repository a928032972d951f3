"""Format and Codec declarations, and the registry of what the loaded plugins registered.

Built-in formats live in ``converter.plugins.*`` and register through the same hooks as
third-party plugins, which are found through the ``converter`` entry-point group::

    [project.entry-points.converter]
    toml = "converter_toml"

Loading (each plugin on its own, failures as warnings, CONVERTER_LOAD_PLUGINS /
CONVERTER_DISABLE_PLUGINS / CONVERTER_PLUGINS_STRICT) is ``converter.plugin_manager``'s job;
this module holds the declarations and the registry built from the loaded plugins.

Name clashes: a format name or alias may be claimed once. A plugin that means to replace an
existing format says so with ``Format(..., replaces=True)`` and must be registered after it
(third-party plugins always are); any other clash leaves the plugin out (``PluginError`` in
strict mode). Built-in formats win extension and detection ties, and automatic codec choice
uses built-in codecs only (``converter.detect``, ``converter.codecs``).
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import pluggy

from .errors import PluginError, UnknownFormatError

hookimpl = pluggy.HookimplMarker("converter")

BUILTIN_PLUGINS = (
    "converter.plugins.codecs",
    "converter.plugins.pickle",
    "converter.plugins.json",
    "converter.plugins.dbm",
    "converter.plugins.gdbm",
    "converter.plugins.bdb",
    "converter.plugins.sqlite",
)

Record = tuple  # (key, value)


@dataclass
class Format:
    """A declarative description of one file format.

    name: the canonical name (``--from``/``--to``), e.g. ``"json"``.
    sniff(head, path) -> str | None: ``head`` is up to 4096 first bytes of ``path`` (empty when
        ``path`` is not a file, e.g. the base name of a multi-file store). Return a short reason
        ("gdbm magic 0x13579acf") when the content is this format, else None. Must not raise.
    reader(path, options) -> iterable of (key, value) records.
    writer(path, records, options): write every record to ``path`` (a fresh path in a temporary
        directory; the core renames every file it creates into place after success).
    kv: the store holds bytes -> bytes; the core turns them into values with codecs
        (``key_codec``/``value_codec`` force a codec, e.g. shelve's ``"pickle"``).
    files(path) -> the files that make up the store at ``path`` (default: just ``path``).
    stream: ``-`` means stdin/stdout for this format.
    duplicates: what a repeated key means in this sink: "override" (later wins, counted),
        "error" (the format cannot hold it), "keep" (a stream of records), or "pairs" (dict-shaped
        while keys are unique; when one repeats, the core converts again with
        ``options.keep_pairs`` set and the writer keeps every record as pairs).
    unique_keys: this source should never yield a key twice (a dict, a table with a primary
        key). Informative only: the core checks every key that reaches an output that cannot
        hold a repeat, whatever the source claims (converter/keyset.py).
    priority: breaks ties when several sniffs match; more specific formats use a higher one.
    describe(path, options) -> dict of extra facts for ``convert identify`` (optional).
    writer_needs: modules of which the writer needs one (``("_gdbm",)``); where none can be
        imported, ``convert formats`` says the format cannot be written here, and why.

    Any of the callables may instead be given as a ``"package.module:function"`` string: the
    core imports it when it is first called, so a plugin's heavy modules load only when its
    format is used (the built-ins do this). ``sniff`` is called for every input detected, so
    it belongs in a light module.
    """

    name: str
    description: str = ""
    aliases: tuple[str, ...] = ()
    extensions: tuple[str, ...] = ()
    sniff: Callable[[bytes, Path], str | None] | None = None
    reader: Callable[[Path, Any], Iterable[Record]] | None = None
    writer: Callable[[Path, Iterable[Record], Any], None] | None = None
    kv: bool = False
    key_codec: str | None = None
    value_codec: str | None = None
    files: Callable[[Path], list[Path]] | None = None
    stream: bool = False
    duplicates: str = "override"
    unique_keys: bool = False
    priority: int = 0
    describe: Callable[[Path, Any], dict] | None = None
    writer_needs: tuple[str, ...] = ()
    replaces: bool = False
    plugin: str = ""
    distribution: str = ""

    def missing_for_writing(self) -> str | None:
        """Why this Python cannot write the format (no writer, or none of ``writer_needs``), or None."""
        if self.writer is None:
            return "no writer"
        if not self.writer_needs:
            return None
        import importlib.util

        for module in self.writer_needs:
            try:
                if importlib.util.find_spec(module) is not None:
                    return None
            except (ImportError, ValueError):
                continue
        return f"needs {' or '.join(self.writer_needs)}, which this Python lacks"

    @property
    def builtin(self) -> bool:
        return self.plugin in BUILTIN_PLUGINS

    def parts(self, path: Path) -> list[Path]:
        return list(self.files(path)) if self.files else [path]


_LAZY_FIELDS = ("sniff", "reader", "writer", "files", "describe")


class LazyFunction:
    """A ``"package.module:function"`` reference that imports its module on first call."""

    __slots__ = ("ref", "_function")

    def __init__(self, ref: str):
        module, sep, name = ref.partition(":")
        if not (sep and module and name.isidentifier()):
            raise ValueError(f'{ref!r} is not a "package.module:function" reference')
        self.ref = ref
        self._function = None

    def resolve(self):
        if self._function is None:
            import importlib

            module, _, name = self.ref.partition(":")
            self._function = getattr(importlib.import_module(module), name)
        return self._function

    def __call__(self, *args, **kwargs):
        return (self._function or self.resolve())(*args, **kwargs)

    def __repr__(self):
        return f"<lazy {self.ref}>"


@dataclass
class Codec:
    """Turns a key-value store's bytes into Python values and back.

    decode(data, options, what) -> value; encode(value, options) -> bytes (raise
    ``UnsupportedValueError`` for a value it cannot hold). ``sniff(data)`` says whether stored
    bytes look like this codec (used to auto-detect, in ``order``); ``accepts(value)`` says
    whether a value can be stored with it (used to pick a codec for writing, in ``order``).
    ``sniff_share``: the share of the first records whose bytes ``sniff`` must accept (1.0: all
    of them) for the codec to be detected; one that decodes any bytes may ask for less.
    """

    name: str
    decode: Callable[[bytes, Any, str], Any]
    encode: Callable[[Any, Any], bytes]
    description: str = ""
    sniff: Callable[[bytes], bool] | None = None
    accepts: Callable[[Any], bool] | None = None
    order: int = 50
    sniff_share: float = 1.0
    plugin: str = ""
    distribution: str = ""


_DUPLICATE_POLICIES = {"override", "error", "keep", "pairs"}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*\Z")

# field -> what it must be: "name", "names" (a tuple of names), "strs" (a tuple of str), or types
_FORMAT_FIELDS = {"name": "name", "description": (str,), "aliases": "names", "extensions": "strs",
                  "kv": (bool,), "key_codec": (str, type(None)), "value_codec": (str, type(None)),
                  "stream": (bool,), "duplicates": (str,), "unique_keys": (bool,), "priority": (int,),
                  "writer_needs": "strs", "replaces": (bool,)}
_CODEC_FIELDS = {"name": "name", "description": (str,), "order": (int,), "sniff_share": (int, float)}


def _check_fields(item, plugin: str, fields: dict) -> None:
    """Each declared field of the type it must be, or a PluginError naming the field and the plugin."""
    kind = type(item).__name__.lower()
    label = f'plugin "{plugin}": {kind} {item.name!r}' if isinstance(item.name, str) else f'plugin "{plugin}": a {kind}'
    for attr, rule in fields.items():
        value = getattr(item, attr)
        if rule == "name":
            if not isinstance(value, str) or not _NAME.match(value):
                raise PluginError(f'plugin "{plugin}" registered a {kind} named {value!r}: a name is letters, '
                                  f'digits and . _ + - (no spaces), starting with a letter or digit')
        elif rule in ("names", "strs"):
            if isinstance(value, str):
                raise PluginError(f"{label} has {attr}={value!r}, a str; it must be a tuple of str: ({value!r},)")
            if not isinstance(value, tuple) or not all(isinstance(v, str) and v for v in value):
                raise PluginError(f"{label} has {attr}={value!r}, not a tuple of str")
            bad = [v for v in value if rule == "names" and not _NAME.match(v)]
            if bad:
                raise PluginError(f"{label} has {attr} {bad}: a name is letters, digits and . _ + - (no spaces)")
        elif not isinstance(value, rule) or (bool not in rule and isinstance(value, bool)):
            wanted = " or ".join("None" if t is type(None) else t.__name__ for t in rule)
            raise PluginError(f"{label} has {attr}={value!r}, a {type(value).__name__}; it must be {wanted}")


def _check_hook(item, hook: str, plugin: str) -> None:
    """A Codec given to register_formats (or a Format to register_codecs) is named as such."""
    wrong = {"register_formats": Codec, "register_codecs": Format}[hook] if hook in (
        "register_formats", "register_codecs") else None
    if wrong is not None and isinstance(item, wrong):
        right = "register_codecs" if wrong is Codec else "register_formats"
        raise PluginError(f'plugin "{plugin}" registered converter.{wrong.__name__} {getattr(item, "name", "")!r} '
                          f'in {hook}; a {wrong.__name__} is registered in {right}')


class Registry:
    """Every format and codec that the loaded plugins registered."""

    def __init__(self, pm: pluggy.PluginManager, plugins: dict | None = None):
        from .plugin_manager import PluginInfo

        self.pm = pm
        self.formats: dict[str, Format] = {}
        self.codecs: dict[str, Codec] = {}
        self._names: dict[str, str] = {}  # name or alias (lower case) -> canonical name
        self.replaced: dict[str, Format] = {}  # format name -> the built-in that a plugin's format replaced
        # name -> plugin_manager.PluginInfo
        self.plugins: dict = dict(plugins or getattr(pm, "converter_plugins", None) or {})
        for name, plugin in pm.list_name_plugin():
            if name not in self.plugins:  # registered directly (tests, hosts): described as it is
                self.plugins[name] = PluginInfo(name=name, builtin=name in BUILTIN_PLUGINS,
                                                distribution="converter-toolkit" if name in BUILTIN_PLUGINS else "",
                                                entry_point=getattr(plugin, "__name__", type(plugin).__name__))
        # built-ins first, so that a plugin's clash with one is the plugin's failure
        impls = {}
        for hook in ("register_formats", "register_codecs"):
            for impl in getattr(pm.hook, hook).get_hookimpls():
                impls.setdefault(impl.plugin_name, []).append((hook, impl))
        order = sorted(impls, key=lambda n: (n not in BUILTIN_PLUGINS, n))
        for name in order:
            self._load(self.plugins[name], impls[name])
        self._check_codec_names()
        for info in self.plugins.values():
            info.conflicts = []
            for fmt in (self.formats[n] for n in info.formats if n in self.formats):
                if info.builtin and not fmt.builtin:
                    from .guard import who

                    info.conflicts.append(f"format {fmt.name}: replaced by {who(fmt.plugin, fmt.distribution)}")
                else:
                    info.conflicts += self.conflicts(fmt)

    def _load(self, info, impls) -> None:
        """Call one plugin's hooks and add what it registered, all of it or (on a failure) none."""
        from .guard import LOAD_SECONDS, PluginTimeout, interrupts, own_environment, plugin_stdout, time_limit
        from .plugin_manager import fail

        staged: list = []
        hook = "its registration"
        ctrl_c = None
        try:
            for hook, impl in impls:
                def register(item, hook=hook):
                    staged.append((hook, item))
                with plugin_stdout(), own_environment(), interrupts() as ctrl_c, time_limit(
                        None if info.builtin else LOAD_SECONDS, f"the {hook} hook of plugin {info.name!r}",
                        info.distribution or info.name):
                    impl.function(*[register for _ in impl.argnames])
            hook = "its registration"
            names, codecs = dict(self._names), dict(self.codecs)
            formats, replaced = dict(self.formats), dict(self.replaced)
            try:
                for hook_of, item in staged:
                    _check_hook(item, hook_of, info.name)
                    if isinstance(item, Codec):
                        self._add_codec(item, info.name, info.distribution)
                    else:
                        self._add_format(item, info.name, info.distribution)
            except BaseException:
                self._names, self.codecs, self.formats, self.replaced = names, codecs, formats, replaced
                raise
        except BaseException as exc:  # noqa: BLE001 - SystemExit and the like, too: the plugin's failure
            if info.builtin or (isinstance(exc, KeyboardInterrupt) and (ctrl_c is None or ctrl_c.real)):
                raise  # Ctrl-C, not a plugin's own raise KeyboardInterrupt
            what = (str(exc) if isinstance(exc, PluginError) else f"{exc} in {hook}" if isinstance(exc, PluginTimeout)
                    else f"failed in {hook}: {type(exc).__name__}: {exc}")
            fail(info, what)
            return
        items = [item for _, item in staged]
        info.formats = [x.name for x in items if isinstance(x, Format)]
        info.codecs = [x.name for x in items if isinstance(x, Codec)]

    def _check_codec_names(self) -> None:
        """After every plugin registered: a format's key_codec/value_codec must name a codec
        (any plugin's); a plugin with one that does not is left out, as for any invalid field."""
        from .plugin_manager import fail

        for info in list(self.plugins.values()):
            if info.builtin or info.status != "loaded" or not info.formats:
                continue
            for fmt in (self.formats[n] for n in info.formats if n in self.formats):
                missing = [f"{attr}={getattr(fmt, attr)!r}" for attr in ("key_codec", "value_codec")
                           if getattr(fmt, attr) is not None and getattr(fmt, attr) not in self.codecs]
                if missing:
                    self._drop(info)
                    fail(info, f"format {fmt.name!r} has {', '.join(missing)}, which no plugin registered "
                               f"(codecs: {sorted(self.codecs)})")
                    break

    def _drop(self, info) -> None:
        """Take out what a plugin registered (putting back a built-in it replaced)."""
        for name in info.formats:
            fmt = self.formats.pop(name, None)
            if fmt is None:
                continue
            for n in [fmt.name, *fmt.aliases]:
                self._names.pop(n.lower(), None)
            old = self.replaced.pop(name, None)
            if old is not None:
                self.formats[name] = old
                for n in [old.name, *old.aliases]:
                    self._names[n.lower()] = old.name
        for name in info.codecs:
            self.codecs.pop(name, None)
        info.formats, info.codecs = [], []

    def _add_format(self, fmt, plugin, dist):
        if not isinstance(fmt, Format):
            raise PluginError(f'plugin "{plugin}" registered {fmt!r}, not a converter.Format')
        _check_fields(fmt, plugin, _FORMAT_FIELDS)
        if fmt.reader is None and fmt.writer is None:
            raise PluginError(f'plugin "{plugin}": format {fmt.name!r} has neither a reader nor a writer')
        if fmt.duplicates not in _DUPLICATE_POLICIES:
            raise PluginError(f'plugin "{plugin}": format {fmt.name!r} has duplicates={fmt.duplicates!r}')
        bad_ext = [e for e in fmt.extensions if not e.startswith(".")]
        if bad_ext:
            raise PluginError(f'plugin "{plugin}": format {fmt.name!r} extensions must start with ".": {bad_ext}')
        for attr in _LAZY_FIELDS:
            value = getattr(fmt, attr)
            if isinstance(value, str):
                try:
                    setattr(fmt, attr, LazyFunction(value))
                except ValueError as exc:
                    raise PluginError(f'plugin "{plugin}": format {fmt.name!r} {attr}: {exc}') from None
            elif value is not None and not callable(value):
                raise PluginError(f'plugin "{plugin}": format {fmt.name!r} {attr} is {value!r}, not a function')
        fmt.plugin, fmt.distribution = plugin, dist
        claimed = [fmt.name, *fmt.aliases]
        for n in claimed:
            owner = self._names.get(n.lower())
            if owner is None:
                continue
            if fmt.replaces and owner == fmt.name:
                continue
            what = "name" if n == fmt.name else "alias"
            theirs = "the name of a format" if n.lower() == owner.lower() else f"an alias of the format {owner!r}"
            advice = (" (set replaces=True on a format of the same name to replace it)" if n == fmt.name and
                      n.lower() == owner.lower() else "; choose another")
            raise PluginError(
                f'plugin "{plugin}" registers the format {what} {n!r}, already {theirs} of plugin '
                f'"{self.formats[owner].plugin}"{advice}'
            )
        if not fmt.builtin:
            from .guard import guard_format

            guard_format(fmt)  # every call of the plugin's code is guarded there, nowhere else
        if fmt.replaces and fmt.name in self.formats:
            old = self.formats[fmt.name]
            if old.builtin:
                self.replaced[fmt.name] = old
            for n in [old.name, *old.aliases]:
                self._names.pop(n.lower(), None)
        self.formats[fmt.name] = fmt
        for n in claimed:
            self._names[n.lower()] = fmt.name

    def _add_codec(self, codec, plugin, dist):
        if not isinstance(codec, Codec):
            raise PluginError(f'plugin "{plugin}" registered {codec!r}, not a converter.Codec')
        _check_fields(codec, plugin, _CODEC_FIELDS)
        if not 0 < codec.sniff_share <= 1:
            raise PluginError(f'plugin "{plugin}": codec {codec.name!r} has sniff_share={codec.sniff_share!r}, '
                              f'not a share in (0, 1]')
        for attr in ("decode", "encode", "sniff", "accepts"):
            value = getattr(codec, attr)
            if (value is not None or attr in ("decode", "encode")) and not callable(value):
                raise PluginError(f'plugin "{plugin}": codec {codec.name!r} {attr} is {value!r}, not a function')
        if codec.name in self.codecs:
            raise PluginError(
                f'plugin "{plugin}" registers codec {codec.name!r}, already registered by plugin '
                f'"{self.codecs[codec.name].plugin}"'
            )
        codec.plugin, codec.distribution = plugin, dist
        if plugin not in BUILTIN_PLUGINS:
            from .guard import guard_codec

            guard_codec(codec, dist)
        self.codecs[codec.name] = codec

    def conflicts(self, fmt: Format) -> list[str]:
        """What a plugin format claims that a built-in keeps (an extension; see detect.py for
        content, where a built-in's match always ranks first), or the built-in it replaces:
        shown by ``convert plugins``."""
        if fmt.builtin:
            return []
        if fmt.replaces:
            return [f"format {fmt.name}: replaces the built-in"] if fmt.name in self.replaced else []
        out = []
        for ext in fmt.extensions:
            owner = next((b for b in self if b.builtin and ext.lower() in (e.lower() for e in b.extensions)), None)
            if owner is not None:
                out.append(f"extension {ext}: the built-in {owner.name} keeps it")
                continue
            for other in self:  # another plugin's format with the same extension: --from/--to choose
                if other is not fmt and not other.builtin and ext.lower() in (e.lower() for e in other.extensions):
                    from .guard import who

                    out.append(f"extension {ext}: also claimed by the format {other.name} of "
                               f"{who(other.plugin, other.distribution)}; --from/--to choose between them")
        return out


    def format(self, name: str) -> Format:
        canonical = self._names.get(name.lower())
        if canonical is None:
            raise UnknownFormatError(f"Unknown format {name!r}{_did_you_mean(name, self._names)}. "
                                     f"Pick one of {sorted(self.formats)}{self._failed_note()}")
        return self.formats[canonical]

    def codec(self, name: str) -> Codec:
        try:
            return self.codecs[name]
        except KeyError:
            raise UnknownFormatError(f"Unknown codec {name!r}{_did_you_mean(name, self.codecs)}. "
                                     f"Pick one of {sorted(self.codecs)}{self._failed_note()}") from None

    def _failed_note(self) -> str:
        """For an unknown name: the plugins that failed to load, one of which may have had it."""
        failed = [n for n, i in self.plugins.items() if i.status == "failed"]
        return f" (plugins that failed to load: {', '.join(failed)}; see `convert plugins`)" if failed else ""

    def __iter__(self) -> Iterator[Format]:
        return iter(sorted(self.formats.values(), key=lambda f: f.name))


def _group_declared(group: str = "converter") -> bool:
    """Whether any installed distribution may declare entry points in ``group``.

    A cheap look before pluggy's loader: ``importlib.metadata`` (with the ``email`` package it
    imports) costs about 20 ms of every start-up, more than a small conversion itself, and most
    machines have no plugin. This reads only the ``entry_points.txt`` of each ``*.dist-info`` /
    ``*.egg-info`` directory on ``sys.path``; anything it cannot judge that way (a zip on the
    path, a custom finder that supplies distributions) answers yes, and the real loader decides.
    """
    import importlib.machinery

    for finder in sys.meta_path:
        if hasattr(finder, "find_distributions") and finder is not importlib.machinery.PathFinder:
            return True
    needle = f"[{group}]"
    for entry in sys.path:
        try:
            listing = os.scandir(entry or ".")
        except NotADirectoryError:
            return True  # a zip file (or another importer) on sys.path
        except OSError:
            continue
        with listing:
            for item in listing:
                if not item.name.endswith((".dist-info", ".egg-info")):
                    continue
                try:
                    with open(os.path.join(item.path, "entry_points.txt"), encoding="utf-8", errors="replace") as f:
                        if needle in f.read():
                            return True
                except OSError:
                    continue
    return False


def _did_you_mean(name: str, choices) -> str:
    import difflib

    close = difflib.get_close_matches(name.lower(), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def make_plugin_manager(load_entrypoints: bool | None = None) -> pluggy.PluginManager:
    """A plugin manager with the built-ins and (unless turned off) the installed plugins that load."""
    from .plugin_manager import make

    return make(BUILTIN_PLUGINS, load_entrypoints)[0]


def build_registry(load_entrypoints: bool | None = None) -> Registry:
    """A registry of the built-ins and the installed plugins, with a PluginInfo for each."""
    from .plugin_manager import make

    pm, infos = make(BUILTIN_PLUGINS, load_entrypoints)
    return Registry(pm, infos)


_registry: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, built on first use."""
    global _registry
    if _registry is None:
        _registry = build_registry()
    return _registry


def reset_registry(registry: Registry | None = None) -> None:
    """Forget (or replace) the process-wide registry; for tests and long-running hosts."""
    global _registry
    _registry = registry
