"""The unpicklers (safe and trusting) and one complete pickle turned into objects."""

from __future__ import annotations

import pickle
import warnings

from converter.errors import ConverterError, FormatError, UnsafePickleError

from .allowlist import (_CURRENT, _PY2_OVERRIDES, _RESTRICTED, _TABLE, _TRUST_HINT, _Load, _map_name, _Policy,
                        runs_code)
from .budget import _check_after_load, _check_before_load
from .opcodes import _ScanInfo

# --------------------------------------------------------------------------------------
# Unpicklers
# --------------------------------------------------------------------------------------

class _Memory:
    """A file over bytes whose peek() hands the C unpickler everything at once (fast path).

    The C unpickler asks peek() for a prefetch and then works on that buffer directly, as
    pickle.loads does; read() and readline() are only its fallbacks.
    """

    __slots__ = ("raw", "view", "pos")

    def __init__(self, data):
        self.raw = data  # bytes or bytearray: has find()
        self.view = memoryview(data)
        self.pos = 0

    def read(self, n=-1):
        # a view, not a copy: when a load ends, the C unpickler read()s everything it used
        # from peek() just to skip it, which as bytes would copy the whole pickle once more
        end = len(self.raw) if n is None or n < 0 else min(self.pos + n, len(self.raw))
        chunk = self.view[self.pos:end]
        self.pos = end
        return chunk

    def readinto(self, b):
        chunk = self.read(len(b))
        b[:len(chunk)] = chunk
        return len(chunk)

    def readline(self, limit=-1):
        nl = self.raw.find(b"\n", self.pos)
        return bytes(self.read(-1 if nl < 0 else nl + 1 - self.pos))

    def peek(self, n=0):
        return self.view[self.pos:]


class _SafeUnpickler(pickle.Unpickler):
    def __init__(self, data, policy: _Policy, py2: bool, what: str):
        super().__init__(_Memory(data), encoding=policy.encoding, errors=policy.errors)
        self._policy = policy
        self._overrides = _PY2_OVERRIDES[policy.mode] if py2 else {}
        self._what = what

    def find_class(self, module, name):
        pair = _map_name(module, name)
        policy = self._policy
        if "." not in name and "." not in pair[1]:
            # A user's --allow wins over the table only where the table has a restricted
            # stand-in (object, _codecs.encode, _reconstructor): --allow datetime.datetime
            # must not lose the Python 2 handling of datetime.
            if (pair in policy.extra or (module, name) in policy.extra) and (
                    pair not in _TABLE or pair in _RESTRICTED):
                return policy.resolve_extra(pair)
            found = self._overrides.get(pair)
            if found is None:
                found = _TABLE.get(pair)
            if found is not None:
                return found
        full = f"{pair[0]}.{pair[1]}"
        written = "" if pair == (module, name) else f" (written as {module}.{name})"
        if pair[0] == "__main__":  # --allow cannot help: no module here defines it
            raise UnsafePickleError(
                f"{self._what or 'pickle'}: refused pickle global {full}: it was defined in the script that "
                f"wrote the pickle, so no module here provides it; convert from a Python script that defines "
                f"{pair[1]}: converter.convert(IN, OUT, allow=[{full!r}])")
        if runs_code(*pair):
            raise UnsafePickleError(
                f"{self._what or 'pickle'}: refused pickle global {full}{written}: it can run code or touch "
                f"files, so this file is no plain data; only {_TRUST_HINT}, for a file you wrote yourself")
        raise UnsafePickleError(
            f"{self._what or 'pickle'}: refused pickle global {full}{written}; "
            f"--allow {full} to permit it, or {_TRUST_HINT}")

    def persistent_load(self, pid):
        raise UnsafePickleError(
            f"{self._what or 'pickle'}: refused a persistent ID (PERSID opcode), which only the "
            f"program that wrote the file can resolve")


class _TrustingUnpickler(pickle.Unpickler):
    """The standard unpickler (imports and runs anything), plus the Python 2 string handling."""

    def __init__(self, data, policy: _Policy, py2: bool):
        super().__init__(_Memory(data), encoding=policy.encoding, errors=policy.errors)
        self._overrides = _PY2_OVERRIDES[policy.mode] if py2 else {}

    def find_class(self, module, name):
        found = self._overrides.get(_map_name(module, name))
        if found is not None:
            return found
        return super().find_class(module, name)




def _unpickle(data, info: _ScanInfo, policy: _Policy, what: str, base: int = 0):
    """Build the objects of one complete pickle (data ends with its STOP)."""
    label = what or "pickle"
    if info.tuples >= 2 or info.longs:
        _check_before_load(data, info, label, base)
    if not policy.trust:
        if info.ext_at >= 0:
            raise UnsafePickleError(
                f"{label}: refused an EXT opcode at byte {info.ext_at + base} (copyreg extension "
                f"codes can bypass the allowlist); {_TRUST_HINT}")
        if info.persid_at >= 0:
            raise UnsafePickleError(
                f"{label}: refused a persistent ID (PERSID opcode at byte {info.persid_at + base}), "
                f"which only the program that wrote the file can resolve")
    load = _Load(what, policy)
    token = _CURRENT.set(load)
    try:
        if policy.trust:
            unpickler = _TrustingUnpickler(data, policy, info.has_string)
        else:
            unpickler = _SafeUnpickler(data, policy, info.has_string, what)
        if info.has_string:
            # Protocol 0 STRING arguments are unescaped by the C unpickler, which warns about
            # invalid escapes (DeprecationWarning) in damaged data: the error says enough.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                obj = unpickler.load()
        else:
            obj = unpickler.load()
    except ConverterError:
        raise
    except Exception as exc:  # anything a malformed pickle makes the unpickler raise
        # A non-UTF-8 Python 2 str passed to a constructor (e.g. Decimal) fails there:
        # the string is the problem to report.
        _check_py2_strings(load, label)
        if isinstance(exc, RecursionError):
            raise FormatError(f"{label}: pickle is nested too deeply to load") from None
        if isinstance(exc, MemoryError):
            raise FormatError(f"{label}: pickle asks for more memory than is available") from None
        if isinstance(exc, (AttributeError, ImportError)) and load.policy.trust:
            # --trust: the pickle names a class or module this Python does not have
            raise FormatError(f"{label}: the pickle needs code this Python does not have ({exc}); a class "
                              f"defined in the script that wrote it (__main__) exists only there") from None
        raise FormatError(f"{label}: corrupt pickle ({type(exc).__name__}: {exc})") from None
    finally:
        _CURRENT.reset(token)
    _check_py2_strings(load, label, obj)
    if info.big:
        _check_after_load(obj, info.end, label)
    return obj


_SEARCH_LIMIT = 1_000_000  # containers and strings looked at to name the record; past it, none is named


def _record_holding(obj, text: str):
    """The first key of the dict ``obj`` whose key or value holds the string ``text``, else None."""
    if not isinstance(obj, dict):
        return None
    budget = _SEARCH_LIMIT
    for key, value in obj.items():
        stack = [key, value]
        while stack:
            budget -= 1
            if budget < 0:
                return None
            item = stack.pop()
            if type(item) is str:
                if item == text:
                    return key
            elif isinstance(item, dict):
                stack.extend(item.keys())
                stack.extend(item.values())
            elif isinstance(item, (list, tuple, set, frozenset)):
                stack.extend(item)
    return None


def _shown_key(key) -> str:
    shown = repr(key)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _check_py2_strings(load: _Load, label: str, obj=None) -> None:
    """Refuse the load if a Python 2 str was not UTF-8 (other than a datetime state).

    ``obj``, the loaded object: of a dict (a pickle of records), the message names the record.
    """
    if not load.bad:
        return
    for raw, count in load.bad.items():
        if count > load.consumed[raw]:
            shown = raw if len(raw) <= 40 else raw[:40] + b"..."
            key = _record_holding(obj, raw.decode("utf-8", "surrogateescape"))
            where = "" if key is None else f", record {_shown_key(key)}"
            raise FormatError(
                f"{label}{where}: Python 2 string {shown!r} is not UTF-8; use --py2-strings latin1 "
                f"to read such strings as latin-1, or --py2-strings bytes to keep them as bytes")
