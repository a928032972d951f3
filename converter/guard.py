"""Plugin code runs behind these guards, designed once.

``Registry`` wraps every callable of a third-party ``Format`` or ``Codec`` here when it
registers it, so no call site needs its own ``try``. What a plugin raises is, by role:

- sniff, describe: a ``PluginWarning`` naming the plugin, once per process; detection and
  ``identify`` go on as if the plugin had no opinion (``None``, no details).
- reader, writer, files, a codec's decode/encode: a ``PluginError`` (one line, exit status 1)
  naming the format or codec, the plugin and its distribution.

Any ``BaseException`` counts (``SystemExit``, ``GeneratorExit`` too): a plugin cannot end the
process or choose its exit status. Two things pass unchanged: ``KeyboardInterrupt`` (Ctrl-C
still means stop) and ``ConverterError`` (the errors a plugin is asked to raise, e.g.
``FormatError``). Results are held to the contract where they leave the plugin: a reader's
records are (key, value) tuples, a sniff's answer a str or None, describe's a dict, a codec's
encoding bytes.

Time: a sniff that runs past ``SNIFF_SECONDS`` (it sees the first bytes of a file only), or a
plugin's import and registration past ``LOAD_SECONDS``, is stopped and counts as a failure of
that role, so a plugin caught in a loop cannot hang every command (``time_limit``; Python code
only, in the main thread: a call stuck inside C is not stopped).

``plugin_stdout()``: Python-level stdout points at stderr while plugin modules import and
register, so a stray ``print`` cannot land in data written to stdout (``pipeline`` does the
same for a whole conversion to ``-``, see ``fileio.data_stdout``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
import threading
import warnings

from .errors import ConverterError, PluginError

_warned: set = set()  # (plugin, format, role): each warned about once per process

# a writer's OSError that the system caused is worded by the CLI's policy (the disk is full...)
_SYSTEM_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


SNIFF_SECONDS = 2.0
LOAD_SECONDS = 20.0


_GRACE = 2.0  # seconds of PluginTimeout raised again every 0.1 s before the process gives up


class PluginTimeout(BaseException):
    """Raised into plugin code that ran past its time (a BaseException: ``except Exception`` in
    the plugin does not swallow it)."""

    def __init__(self, seconds: float):
        super().__init__(f"did not finish within {seconds:g} s, and was stopped")
        self.seconds = seconds


@contextlib.contextmanager
def time_limit(seconds: float | None, who: str = "plugin code", off: str = ""):
    """Raise ``PluginTimeout`` inside the block once it has run ``seconds``.

    Raised again every 0.1 s; plugin code that swallows it for ``_GRACE`` seconds more cannot
    be stopped in this process, which then ends with one line naming ``who`` and exit status 1
    (nothing is written yet while plugins load and sniff; a migrate worker's store fails alone).
    Only in the main thread (signals), and only where no other interval timer is running;
    ``None``: no limit.
    """
    if seconds is None or threading.current_thread() is not threading.main_thread() or signal.getitimer(signal.ITIMER_REAL)[0]:
        yield
        return
    repeats = 0

    def expired(signum, frame):
        nonlocal repeats
        repeats += 1
        if repeats > _GRACE * 10:
            hint = f" (CONVERTER_DISABLE_PLUGINS={off} turns it off)" if off else ""
            try:
                sys.__stderr__.write(f"convert: error: {who} did not finish within {seconds:g} s and would not "
                                     f"stop; exiting{hint}\n")
                sys.__stderr__.flush()
            finally:
                os._exit(1)
        raise PluginTimeout(seconds)

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds, 0.1)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def who(plugin: str, distribution: str = "") -> str:
    return f"plugin {plugin!r}" + (f" ({distribution})" if distribution else "")


def _what(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _passes(exc: BaseException) -> bool:
    return isinstance(exc, (KeyboardInterrupt, ConverterError))


@contextlib.contextmanager
def plugin_stdout():
    """Python-level stdout is stderr inside: a plugin's print() must not reach the data."""
    saved, sys.stdout = sys.stdout, sys.stderr
    try:
        yield
    finally:
        sys.stdout = saved


class _Interrupts:
    real = True  # a KeyboardInterrupt is the user's, unless the handler below could tell


@contextlib.contextmanager
def interrupts():
    """Tell Ctrl-C from a plugin's own ``raise KeyboardInterrupt`` inside the block: ``.real``
    says whether a SIGINT arrived (where this cannot be known, every KeyboardInterrupt is real)."""
    seen = _Interrupts()
    previous = signal.getsignal(signal.SIGINT) if threading.current_thread() is threading.main_thread() else None
    if previous not in (signal.default_int_handler, signal.SIG_IGN):
        yield seen
        return
    seen.real = False

    def arrived(signum, frame):
        seen.real = True
        raise KeyboardInterrupt

    if previous is signal.default_int_handler:
        signal.signal(signal.SIGINT, arrived)
    try:
        yield seen
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def own_environment():
    """The ``CONVERTER_*`` environment variables as they were before the block, after it: a
    plugin that sets ``CONVERTER_DISABLE_PLUGINS`` (or any other) while it loads changes neither
    this process's plugin set nor that of the migrate workers that inherit the environment."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("CONVERTER_")}
    try:
        yield
    finally:
        for k in [k for k in os.environ if k.startswith("CONVERTER_") and k not in saved]:
            del os.environ[k]
        for k, v in saved.items():
            if os.environ.get(k) != v:
                os.environ[k] = v


def warn_once(plugin: str, distribution: str, name: str, role: str, problem: str) -> None:
    from .plugin_manager import PluginWarning

    key = (plugin, name, role)
    if key in _warned:
        return
    _warned.add(key)
    warnings.warn(f"the {name} {role} of {who(plugin, distribution)} {problem}; it is ignored "
                  f"(CONVERTER_DISABLE_PLUGINS={distribution or plugin} turns the plugin off)",
                  PluginWarning, stacklevel=3)


def guard_format(fmt) -> None:
    """Wrap each callable of a plugin's ``fmt`` in place."""
    for role, wrap in (("sniff", _sniff), ("reader", _reader), ("writer", _writer), ("files", _files),
                       ("describe", _describe)):
        fn = getattr(fmt, role)
        if fn is not None:
            guarded = wrap(fmt, fn)
            guarded.__wrapped__ = fn  # the plugin's own function, for hosts and tests
            setattr(fmt, role, guarded)


def guard_codec(codec, distribution: str = "") -> None:
    codec.decode = _decode(codec, codec.decode, distribution)
    codec.encode = _encode(codec, codec.encode, distribution)


def _sniff(fmt, fn):
    label, off = f"the {fmt.name} sniff of {who(fmt.plugin, fmt.distribution)}", fmt.distribution or fmt.plugin

    def sniff(head, path):
        try:
            with time_limit(SNIFF_SECONDS, label, off):
                reason = fn(head, path)
        except KeyboardInterrupt:
            raise
        except PluginTimeout as exc:
            warn_once(fmt.plugin, fmt.distribution, fmt.name, "sniff", str(exc))
            return None
        except BaseException as exc:  # noqa: BLE001 - a plugin's sniff must not stop detection
            warn_once(fmt.plugin, fmt.distribution, fmt.name, "sniff", f"failed: {_what(exc)}")
            return None
        if reason is not None and not isinstance(reason, str):
            warn_once(fmt.plugin, fmt.distribution, fmt.name, "sniff",
                      f"returned {type(reason).__name__} {reason!r:.40}, not a str (a reason) or None")
            return None
        return reason
    return sniff


def _describe(fmt, fn):
    def describe(path, options):
        try:
            details = fn(path, options)
        except ConverterError:
            raise  # a damaged file, said by the plugin: identify reports it for this path
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001
            warn_once(fmt.plugin, fmt.distribution, fmt.name, "describe", f"failed: {_what(exc)}")
            return {}
        if not isinstance(details, dict):
            warn_once(fmt.plugin, fmt.distribution, fmt.name, "describe",
                      f"returned {type(details).__name__}, not a dict")
            return {}
        return details
    return describe


def _failed(fmt, role, path, exc) -> PluginError:
    return PluginError(f"{path}: the {fmt.name} {role} of {who(fmt.plugin, fmt.distribution)} failed: {_what(exc)}")


def _naming(exc: BaseException, path) -> BaseException:
    """A ``ConverterError`` a plugin raised, naming ``path`` first if it does not name it (one
    made by a helper such as ``jsontags.loads`` without ``name=`` names nothing)."""
    if isinstance(exc, ConverterError) and exc.args and isinstance(exc.args[0], str):
        where = "standard input" if str(path) == "-" else str(path)
        if where not in exc.args[0]:
            exc.args = (f"{where}: {exc.args[0]}", *exc.args[1:])
    return exc


def _files(fmt, fn):
    def files(path):
        try:
            return list(fn(path))
        except BaseException as exc:  # noqa: BLE001
            if _passes(exc):
                raise
            raise _failed(fmt, "files()", path, exc) from exc
    return files


def _reader(fmt, fn):
    def reader(path, options):
        """The plugin's records, each checked to be a (key, value) tuple."""
        try:
            it = iter(fn(path, options))
        except BaseException as exc:  # noqa: BLE001
            if _passes(exc):
                raise _naming(exc, path)
            raise _failed(fmt, "reader", path, exc) from exc
        try:
            while True:
                try:
                    record = next(it)
                except StopIteration:
                    return
                except BaseException as exc:  # noqa: BLE001 - raised by the plugin's code
                    if _passes(exc):
                        raise _naming(exc, path)
                    raise _failed(fmt, "reader", path, exc) from exc
                if not (isinstance(record, tuple) and len(record) == 2):
                    raise PluginError(f"{path}: the {fmt.name} reader of {who(fmt.plugin, fmt.distribution)} yielded "
                                      f"{type(record).__name__} {str(record)[:60]!r}, not a (key, value) pair (a 2-tuple)")
                yield record if type(record) is tuple else tuple(record)
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()
    return reader


class _Feed:
    """The records given to a plugin's writer; remembers an exception raised upstream of it (the
    reader, a codec, a repeated key), which is not the writer's failure."""

    __slots__ = ("_it", "raised")

    def __init__(self, records):
        self._it, self.raised = iter(records), None

    def __iter__(self):
        return self

    def __next__(self):
        try:
            return next(self._it)
        except StopIteration:
            raise
        except BaseException as exc:
            self.raised = exc
            raise


def _writer(fmt, fn):
    def writer(path, records, options):
        feed = _Feed(records)
        try:
            return fn(path, feed, options)
        except BaseException as exc:  # noqa: BLE001
            if exc is feed.raised or _passes(exc):
                raise
            if isinstance(exc, OSError) and exc.errno in _SYSTEM_ERRNOS:
                raise
            raise _failed(fmt, "writer", path, exc) from exc
    return writer


def _codec_failed(codec, distribution, role, exc) -> PluginError:
    return PluginError(f"codec {codec.name!r} of {who(codec.plugin, distribution)} failed to {role}: {_what(exc)}")


def _decode(codec, fn, distribution):
    def decode(data, options, what):
        try:
            return fn(data, options, what)
        except BaseException as exc:  # noqa: BLE001
            if _passes(exc):
                raise
            raise PluginError(f"{what}: {_codec_failed(codec, distribution, 'decode', exc)}") from exc
    return decode


def _encode(codec, fn, distribution):
    def encode(value, options):
        try:
            data = fn(value, options)
        except BaseException as exc:  # noqa: BLE001
            if _passes(exc):
                raise
            raise _codec_failed(codec, distribution, f"encode a value of type {type(value).__name__}", exc) from exc
        if type(data) is not bytes:
            raise PluginError(f"codec {codec.name!r} of {who(codec.plugin, distribution)} encoded a value of type "
                              f"{type(value).__name__} as {type(data).__name__}, not bytes")
        return data
    return encode
