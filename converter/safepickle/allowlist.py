"""What a pickle may name: the allowlist, its stand-ins that check sizes before they build, the
refusal policy per load, and the Python 2 string error handler.
"""

from __future__ import annotations

import codecs
import collections
import contextvars
import copyreg
import datetime
import decimal
import importlib
from collections import Counter
from typing import Any

from _compat_pickle import IMPORT_MAPPING, NAME_MAPPING

from converter.errors import ConverterError, FormatError, UnsafePickleError
from converter.options import parse_allow

PY2_STRING_MODES = ("utf8", "latin1", "bytes")

_TRUST_HINT = "--trust to unpickle anything (this runs code from the file)"

# --------------------------------------------------------------------------------------
# The allowlist
# --------------------------------------------------------------------------------------

class _Load:
    """Per-load state, reachable from wrappers and the codec error handler via a ContextVar."""

    __slots__ = ("what", "policy", "bad", "consumed", "last_obj", "decimals")

    def __init__(self, what: str, policy: _Policy):
        self.what = what
        self.policy = policy  # its .types: classes copyreg._reconstructor may build
        # Python 2 strings that are not UTF-8, and how many of them were datetime states
        # (made on first use: most loads never need them).
        self.bad: Counter | None = None
        self.consumed: Counter | None = None
        self.last_obj = None
        self.decimals: dict | None = None  # hash -> distinct Decimals made with it (see _counted_decimal)


_CURRENT: contextvars.ContextVar[_Load | None] = contextvars.ContextVar("safepickle_load", default=None)


def _what() -> str:
    load = _CURRENT.get()
    return (load.what if load else "") or "pickle"


# The wrappers below are instances of classes with empty __slots__: a BUILD opcode aimed at
# them can neither set attributes nor find a __setstate__, so a pickle cannot tamper with
# them (a plain function would let BUILD rewrite its __defaults__ for every later load).

class _ObjectBase:
    """Stands for builtins.object, which is allowed only as copyreg._reconstructor's base."""

    __slots__ = ()

    def __call__(self, *args, **kwargs):
        raise UnsafePickleError(
            f"{_what()}: refused a call of pickle global builtins.object (only allowed as a "
            f"copyreg._reconstructor base); --allow builtins.object to permit it, or {_TRUST_HINT}")

    def __repr__(self):
        return "<builtins.object, as a reconstructor base only>"


_OBJECT = _ObjectBase()


class _Reconstructor:
    """copyreg._reconstructor(cls, base, state), only for allowed classes and bases."""

    __slots__ = ()

    def __call__(self, cls, base, state=None):
        load = _CURRENT.get()
        types = load.policy.types if load else _DEFAULT_TYPES
        base_ok = base is _OBJECT or (isinstance(base, type) and base in types)
        if not (isinstance(cls, type) and cls in types and base_ok):
            raise UnsafePickleError(
                f"{_what()}: refused copyreg._reconstructor for class {_describe(cls)} with base "
                f"{_describe(base)}; --allow the class to permit it, or {_TRUST_HINT}")
        real_base = object if base is _OBJECT else _REAL.get(base, base)
        cls = _REAL.get(cls, cls)
        if not issubclass(cls, real_base):
            raise FormatError(f"{_what()}: copyreg._reconstructor: {_describe(cls)} is not a "
                              f"subclass of {_describe(base)}")
        if real_base in _STAND_IN:  # base.__new__/__init__(obj, state): a size or an iterable
            _check_args(real_base.__name__, (state,))
        return copyreg._reconstructor(cls, real_base, state)


def _describe(obj) -> str:
    if obj is _OBJECT:
        return "builtins.object"
    if isinstance(obj, type):
        return f"{obj.__module__}.{obj.__qualname__}"
    return type(obj).__name__ + " value"


def _is_latin1_name(encoding) -> bool:
    if isinstance(encoding, (bytes, bytearray)):
        encoding = bytes(encoding).decode("ascii", "replace")
    return isinstance(encoding, str) and encoding.lower() in ("latin1", "latin-1")


class _Encode:
    """_codecs.encode, only as encode(str, 'latin1'): how Python 3 pickles bytes at protocol < 3."""

    __slots__ = ()

    def __call__(self, obj=None, encoding="utf-8", errors="strict"):
        if type(obj) is not str or not _is_latin1_name(encoding) or errors not in ("strict", b"strict"):
            raise UnsafePickleError(
                f"{_what()}: refused _codecs.encode with arguments other than (str, 'latin1'); "
                f"--allow _codecs.encode to permit it, or {_TRUST_HINT}")
        return obj.encode("latin-1")


class _Py2DateClass:
    """datetime/date/time in utf8 mode: their Python 2 state is a str of packed bytes."""

    __slots__ = ()
    cls: type = object

    def __call__(self, *args):
        if args and isinstance(args[0], str):
            raw = args[0].encode("utf-8", "surrogateescape")
            load = _CURRENT.get()
            if load is not None and load.bad and raw in load.bad:
                load.consumed[raw] += 1
            args = (raw,) + args[1:]
        return self.cls(*args)


def _py2_date_wrapper(cls: type) -> _Py2DateClass:
    sub = type(f"_Py2{cls.__name__.title()}", (_Py2DateClass,), {"__slots__": (), "cls": cls})
    return sub()


def _counted_decimal(d):
    """``d``, its hash counted against ``collisions``: Decimal hashes are not randomised, and
    Decimal(i * (2**61 - 1)) all hash to 0, so a dict of such keys would take the C unpickler
    quadratic time to build. Refused once more than ``collisions`` distinct values share one."""
    load = _CURRENT.get()
    if load is None or d.is_snan():
        return d
    from converter import budget

    limit = budget.active().collisions
    if limit is None:
        return d
    if load.decimals is None:
        load.decimals = {}
    same = load.decimals.setdefault(hash(d), set())
    if len(same) <= limit:
        same.add(d)
        if len(same) > limit:
            raise budget.refuse(_what(), f"more than {limit:,} Decimals that share one hash value (hash flooding)",
                                "collisions", limit)
    return d


class _Decimal:
    """decimal.Decimal, each one made counted (``_counted_decimal``)."""

    __slots__ = ()

    def __call__(self, *args):
        return _counted_decimal(decimal.Decimal(*args))

    def __repr__(self):
        return "<decimal.Decimal, hashes counted>"


class _BytesDecimal:
    """decimal.Decimal in bytes mode: Python 2 wrote its argument as a str."""

    __slots__ = ()

    def __call__(self, value="0", context=None):
        if isinstance(value, bytes):
            value = value.decode("ascii")
        return _counted_decimal(decimal.Decimal(value) if context is None else decimal.Decimal(value, context))


class _BytesBytearray:
    """bytearray in bytes mode: Python 2 wrote bytearray(unicode, 'latin-1') with a str name."""

    __slots__ = ()

    def __call__(self, *args):
        if len(args) >= 2 and isinstance(args[1], bytes):
            args = (args[0], args[1].decode("ascii")) + args[2:]
        return _STAND_IN[bytearray](*args)


# --- constructors whose arguments are sizes or lazy iterables ----------------------------
#
# bytearray(10**9), list(range(2**40)) or deque(range(2**62), 0) are a few bytes of pickle and
# gigabytes (or hours) of work once called. Each such allowlisted type is handed out as a
# stand-in subclass whose __new__ checks the arguments against the resource budget first and
# then returns an instance of the real type (so REDUCE, NEWOBJ and copyreg._reconstructor all
# pass through the check, and no instance of the stand-in ever exists). Tuples made here are
# also checked for hashing depth, like the ones the opcode scan checks.

def _lazy_length(arg) -> int | None:
    """How many items a lazy iterable argument will produce (only range is lazy here)."""
    if type(arg) is range:
        step = arg.step
        span = arg.stop - arg.start
        count = (span + step - (1 if step > 0 else -1)) // step
        return max(count, 0)
    return None


def _check_args(name: str, args) -> None:
    from converter import budget

    what = _what()
    for arg in args[:2]:
        if type(arg) is int and name in ("bytes", "bytearray"):
            budget.check("alloc", arg, what, f"{name}({{amount:,}}) asks for {{amount:,}} bytes")
        count = _lazy_length(arg)
        if count is not None:
            budget.check("items", count, what, f"{name}() of a range of {{amount:,}} items")


def _checked_type(real: type):
    name = real.__name__

    def __new__(cls, *args, **kwargs):
        _check_args(name, args)
        args = tuple(_REAL.get(a, a) if type(a) is _Sealed else a for a in args)
        if hashes and args and type(args[0]) in (list, tuple):
            from converter import budget

            members = args[0] if real is not dict else [p[0] for p in args[0] if type(p) is tuple and p]
            for member in members:
                if type(member) is tuple:
                    budget.check_hashable(member, _what())  # before anything hashes them
            budget.check_collisions(members, _what())
        obj = real(*args, **kwargs)
        if real is tuple and tuple in map(type, obj):
            # the pickler writes tuples with TUPLE opcodes, never as tuple() calls; the model
            # of the stack (_model) cannot see into these, so they may not nest
            raise UnsafePickleError(f"{_what()}: refused a call of builtins.tuple with tuples inside "
                                    f"(the pickler never writes one); {_TRUST_HINT}")
        return obj

    hashes = real in (set, frozenset, dict, collections.OrderedDict)

    return _Sealed(name, (real,), {"__new__": __new__, "__slots__": (),
                                   "__module__": real.__module__, "__qualname__": real.__qualname__})


class _Sealed(type):
    """The stand-ins' metaclass: like the built-in types, they cannot be changed (BUILD)."""

    def __setattr__(cls, name, value):
        raise TypeError(f"cannot set attributes of {cls.__qualname__}")

    def __delattr__(cls, name):
        raise TypeError(f"cannot delete attributes of {cls.__qualname__}")


_SIZED = (bytes, bytearray, list, tuple, set, frozenset, dict, collections.OrderedDict,
          collections.defaultdict, collections.deque)
_STAND_IN = {real: _checked_type(real) for real in _SIZED}
_REAL = {stand_in: real for real, stand_in in _STAND_IN.items()}


class _ZoneInfo:
    """zoneinfo.ZoneInfo(key), as this tool's pickle writer writes a zone (plugins/pickle.py),
    so the ``$zoneinfo`` values of its JSON come back from its pickles with the default
    allowlist. Only one str key is taken; zoneinfo itself refuses keys that would leave the
    time-zone data directories. (The standard pickler's form, ``getattr(ZoneInfo, '_unpickle')``,
    is ``_Getattr`` below.)"""

    __slots__ = ()

    def __call__(self, *args, **kwargs):
        if kwargs or len(args) != 1 or type(args[0]) is not str or len(args[0]) > 255:
            raise UnsafePickleError(f"{_what()}: refused a call of zoneinfo.ZoneInfo other than "
                                    f"ZoneInfo(key) with a short str key; {_TRUST_HINT}")
        import zoneinfo

        try:
            return zoneinfo.ZoneInfo(args[0])
        except (ValueError, zoneinfo.ZoneInfoNotFoundError) as exc:
            raise FormatError(f"{_what()}: time zone {args[0]!r} is not one this machine knows ({exc})") from None

    def __repr__(self):
        return "<zoneinfo.ZoneInfo, by key only>"


class _ZoneInfoUnpickle:
    """zoneinfo.ZoneInfo._unpickle(key, from_cache), as the standard pickler writes a zone."""

    __slots__ = ()

    def __call__(self, *args, **kwargs):
        if (kwargs or len(args) != 2 or type(args[0]) is not str or len(args[0]) > 255
                or type(args[1]) not in (int, bool) or args[1] not in (0, 1)):
            raise UnsafePickleError(f"{_what()}: refused a call of zoneinfo.ZoneInfo._unpickle other than "
                                    f"(key, 0 or 1); {_TRUST_HINT}")
        import zoneinfo

        try:
            return zoneinfo.ZoneInfo._unpickle(args[0], args[1])
        except (ValueError, zoneinfo.ZoneInfoNotFoundError) as exc:
            raise FormatError(f"{_what()}: time zone {args[0]!r} is not one this machine knows ({exc})") from None


class _Getattr:
    """builtins.getattr, as the standard pickler uses it for a zone: getattr(ZoneInfo, '_unpickle')
    and nothing else (getattr of anything else is how a pickle reaches code: refused)."""

    __slots__ = ()

    def __call__(self, *args, **kwargs):
        if not kwargs and len(args) == 2 and args[0] is _TABLE[("zoneinfo", "ZoneInfo")] and args[1] == "_unpickle":
            return _ZONEINFO_UNPICKLE
        raise UnsafePickleError(f"{_what()}: refused builtins.getattr({', '.join(map(_describe, args))}): getattr "
                                f"reaches any attribute, so a pickle can call code through it; only "
                                f"getattr(zoneinfo.ZoneInfo, '_unpickle') (a time zone) is allowed. {_TRUST_HINT}")


_ZONEINFO_UNPICKLE = _ZoneInfoUnpickle()

# Globals that run code or touch the system: never suggested with --allow, whatever the pickle.
_CODE_MODULES = frozenset(("os", "posix", "nt", "subprocess", "sys", "importlib", "runpy", "pty", "shutil", "socket",
                           "ctypes", "code", "codeop", "pickle", "_pickle", "marshal", "types", "commands",
                           "platform", "webbrowser", "multiprocessing", "asyncio", "threading", "signal", "io",
                           "_io", "tempfile", "pathlib", "glob", "operator", "functools", "inspect", "pydoc"))
_CODE_BUILTINS = frozenset(("eval", "exec", "execfile", "compile", "getattr", "setattr", "delattr", "__import__",
                            "open", "file", "input", "raw_input", "breakpoint", "globals", "locals", "vars",
                            "apply", "reload", "exit", "quit", "help", "memoryview", "classmethod", "staticmethod",
                            "property", "super", "type"))


def runs_code(module: str, name: str) -> bool:
    """Whether (module, name) is a global through which a pickle could run code or touch files."""
    top = module.split(".", 1)[0]
    return top in _CODE_MODULES or (module in ("builtins", "__builtin__") and name in _CODE_BUILTINS)


_PLAIN_TYPES = {
    "builtins": (set, frozenset, complex, bytearray, bytes, slice, range, list, dict, tuple,
                 str, int, float, bool),
    "datetime": (datetime.datetime, datetime.date, datetime.time, datetime.timedelta,
                 datetime.timezone),
    "decimal": (decimal.Decimal,),
    "collections": (collections.OrderedDict, collections.defaultdict, collections.deque),
}

# (module, name) -> the object find_class returns. Exact pairs only, never a module.
_TABLE: dict[tuple[str, str], Any] = {
    (module, cls.__name__): _STAND_IN.get(cls, cls) for module, classes in _PLAIN_TYPES.items() for cls in classes}
_TABLE[("builtins", "object")] = _OBJECT
_TABLE[("_codecs", "encode")] = _Encode()
_TABLE[("copyreg", "_reconstructor")] = _Reconstructor()
_TABLE[("zoneinfo", "ZoneInfo")] = _ZoneInfo()
_TABLE[("decimal", "Decimal")] = _Decimal()
_TABLE[("builtins", "getattr")] = _Getattr()

_RESTRICTED = frozenset({("builtins", "object"), ("_codecs", "encode"), ("copyreg", "_reconstructor"),
                         ("builtins", "getattr")})

DEFAULT_ALLOWED: frozenset[tuple[str, str]] = frozenset(_TABLE)
"""Exact (module, name) pairs allowed by default, as Python 3 names (after mapping Python 2 names)."""

_DEFAULT_TYPES = frozenset(obj for obj in _TABLE.values() if isinstance(obj, type)) | {decimal.Decimal}

# Replacements for Python 2 pickles (those with STRING opcodes), per --py2-strings mode.
_PY2_OVERRIDES: dict[str, dict[tuple[str, str], Any]] = {
    "utf8": {("datetime", c.__name__): _py2_date_wrapper(c)
             for c in (datetime.datetime, datetime.date, datetime.time)},
    "latin1": {},  # Python 3's datetime takes a latin-1 str state as it is
    "bytes": {("decimal", "Decimal"): _BytesDecimal(), ("builtins", "bytearray"): _BytesBytearray()},
}


def _map_name(module: str, name: str) -> tuple[str, str]:
    """Python 2 names to Python 3 ones, as pickle's fix_imports does (find_class gets them raw)."""
    if (module, name) in NAME_MAPPING:
        return NAME_MAPPING[(module, name)]
    return IMPORT_MAPPING.get(module, module), name


def _import_allowed(module: str, name: str):
    """Resolve a global the user allowed by name: only these are ever imported."""
    try:
        return getattr(importlib.import_module(module), name)
    except Exception as exc:  # ImportError, AttributeError, or whatever the module raises
        hint = "; run with PYTHONPATH naming the directory that holds it" if isinstance(exc, ImportError) else ""
        raise ConverterError(f"--allow {module}.{name}: cannot import it ({type(exc).__name__}: {exc}){hint}") from None


_POLICY_CACHE: dict = {}


class _Policy:
    """What a load may use: the allowlist (with user additions), trust, and the py2 string mode."""

    def __init__(self, allow, trust: bool, py2_strings: str):
        if py2_strings not in PY2_STRING_MODES:
            raise ConverterError(
                f"--py2-strings {py2_strings!r}: expected one of {', '.join(PY2_STRING_MODES)}")
        self.trust = bool(trust)
        self.mode = py2_strings
        self.extra = parse_allow(allow)
        self._resolved: dict[tuple[str, str], Any] = {}
        self.encoding, self.errors = {"utf8": ("utf-8", _PY2_ERRORS), "latin1": ("latin1", "strict"),
                                      "bytes": ("bytes", "strict")}[py2_strings]
        self.types = _DEFAULT_TYPES

    def resolve_extra(self, pair):
        if pair not in self._resolved:
            obj = _import_allowed(*pair)
            self._resolved[pair] = obj
            if isinstance(obj, type):
                self.types = self.types | {obj}
        return self._resolved[pair]


def _policy(allow, trust, py2_strings) -> _Policy:
    """Policies are cached: loads() is called once per record of a database."""
    allow = tuple(allow) if allow else ()
    key = (allow, bool(trust), py2_strings)
    try:
        hash(key)
    except TypeError:  # e.g. [module, name] lists
        return _Policy(allow, trust, py2_strings)
    policy = _POLICY_CACHE.get(key)
    if policy is None:
        if len(_POLICY_CACHE) > 64:
            _POLICY_CACHE.clear()
        policy = _POLICY_CACHE[key] = _Policy(allow, trust, py2_strings)
    return policy


# --------------------------------------------------------------------------------------
# The Python 2 string error handler
# --------------------------------------------------------------------------------------

_PY2_ERRORS = "converter.safepickle.py2str"


def _py2str_errors(exc):
    """Decoding error handler for Python 2 str in utf8 mode: record, then escape losslessly."""
    load = _CURRENT.get()
    if load is None or not isinstance(exc, UnicodeDecodeError):
        raise exc
    # The decoder reuses one exception object (and its .object) for all errors of a string,
    # so count each string once. Holding a reference keeps its id from being reused.
    if exc.object is not load.last_obj:
        load.last_obj = exc.object
        if load.bad is None:
            load.bad, load.consumed = Counter(), Counter()
        load.bad[bytes(exc.object)] += 1
    bad = exc.object[exc.start:exc.end]
    return "".join(chr(0xDC00 + b) for b in bad), exc.end


codecs.register_error(_PY2_ERRORS, _py2str_errors)
