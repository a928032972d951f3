"""Safe unpickling of untrusted files, including pickles written by Python 2.

Unpickling runs code: a pickle names globals (``os.system``) and calls them. This module
loads pickles with an unpickler whose ``find_class`` only hands out plain-data types from
an exact allowlist, and it refuses the opcodes that get around ``find_class`` (EXT1/2/4,
which read the shared copyreg extension cache, and PERSID/BINPERSID).

Every pickle is first walked opcode by opcode (without decoding anything) by ``_scan``.
That walk finds where the pickle ends (so truncation is reported with a byte offset and
several pickles can be read back to back, even from a pipe), refuses EXT/PERSID before any
object is built, bounds memo indexes, and tells whether Python 2 ``str`` opcodes
(STRING/BINSTRING/SHORT_BINSTRING) occur. The bytes of the pickle are then handed to
CPython's C unpickler, so building objects stays fast.

Python 2 ``str`` values are decoded by the unpickler itself (``encoding=``/``errors=``):

* ``utf8`` (default): decoded as UTF-8 through an error handler that records each string
  that is not UTF-8. Such a string is an error (naming ``--py2-strings``) unless it was the
  packed state of a ``datetime``/``date``/``time``, which is binary by nature; the wrapper
  for those classes recovers the exact bytes (the handler escapes bad bytes like
  ``surrogateescape``) and marks the string as used.
* ``latin1``: every such string decoded as latin-1 (Python 3's datetime accepts that state).
* ``bytes``: kept as ``bytes``; ``Decimal`` and ``bytearray`` get wrappers that accept the
  byte-string arguments Python 2 wrote.

Python 3 ``bytes`` pickled at protocol < 3 arrive as ``_codecs.encode(str, 'latin1')`` and at
protocol >= 3 as BINBYTES: both stay ``bytes`` since neither is a STRING opcode.
"""

from __future__ import annotations

import codecs
import collections
import contextvars
import copyreg
import datetime
import decimal
import importlib
import pickle
import pickletools
import warnings
from collections import Counter
from typing import Any, BinaryIO, Iterator

from _compat_pickle import IMPORT_MAPPING, NAME_MAPPING

from converter.errors import ConverterError, FormatError, UnsafePickleError
from converter.options import parse_allow

__all__ = ["DEFAULT_ALLOWED", "pickle_protocol", "pickle_length", "loads", "load", "iter_pickles"]

PY2_STRING_MODES = ("utf8", "latin1", "bytes")

_TRUST_HINT = "--trust to unpickle anything (this runs code from the file)"


# --------------------------------------------------------------------------------------
# The opcode table used by the scanner, built from pickletools' descriptions.
# --------------------------------------------------------------------------------------

_NOARG, _FIXED, _LINE, _LINE2, _LEN1, _LEN4S, _LEN4U, _LEN8U = range(8)
_KIND: list[int | None] = [None] * 256  # opcode byte -> argument kind (None: not an opcode)
_SIZE = [0] * 256  # fixed argument size, or width of the length prefix
_OPNAME: dict[int, str] = {}
_BINARY_OPS = set()  # opcodes that protocol 0 never uses

for _op in pickletools.opcodes:
    _c = ord(_op.code)
    _OPNAME[_c] = _op.name
    if _op.proto >= 1:
        _BINARY_OPS.add(_c)
    _arg = _op.arg
    if _arg is None:
        _KIND[_c] = _NOARG
    elif _arg.n >= 0:
        _KIND[_c], _SIZE[_c] = _FIXED, _arg.n
    elif _arg.n == pickletools.UP_TO_NEWLINE:
        # GLOBAL and INST carry two newline-terminated strings (module, name).
        _KIND[_c] = _LINE2 if _op.name in ("GLOBAL", "INST") else _LINE
    elif _arg.n == pickletools.TAKEN_FROM_ARGUMENT1:
        _KIND[_c], _SIZE[_c] = _LEN1, 1
    elif _arg.n == pickletools.TAKEN_FROM_ARGUMENT4:
        _KIND[_c], _SIZE[_c] = _LEN4S, 4
    elif _arg.n == pickletools.TAKEN_FROM_ARGUMENT4U:
        _KIND[_c], _SIZE[_c] = _LEN4U, 4
    elif _arg.n == pickletools.TAKEN_FROM_ARGUMENT8U:
        _KIND[_c], _SIZE[_c] = _LEN8U, 8
    else:  # pragma: no cover - a future argument kind we do not know
        raise RuntimeError(f"unknown pickletools argument kind for {_op.name}")

_STOP = ord(".")
_STRING_OPS = frozenset(map(ord, "STU"))  # STRING, BINSTRING, SHORT_BINSTRING: Python 2 str
_EXT_OPS = frozenset((0x82, 0x83, 0x84))
_PERSID_OPS = frozenset(map(ord, "PQ"))
_PUT, _LONG_BINPUT = ord("p"), ord("r")
# A memo index is at most the number of PUTs before it; a much larger one would only make
# the C unpickler allocate (and zero) a huge memo table. Allow generous slack.
_MEMO_SLACK = 1 << 16


class _Cut(Exception):
    """The data ended inside a pickle (op: offset of the unfinished opcode, or of the end)."""

    def __init__(self, offset: int, code: int | None):
        super().__init__(offset, code)
        self.offset, self.code = offset, code


class _Bad(Exception):
    """The bytes are not a pickle (offset, reason)."""

    def __init__(self, offset: int, reason: str):
        super().__init__(offset, reason)
        self.offset, self.reason = offset, reason


class _ScanInfo:
    __slots__ = ("end", "has_string", "ext_at", "persid_at", "big", "tuples", "longs")

    def __init__(self, end: int, has_string: bool, ext_at: int, persid_at: int,
                 big: bool = False, tuples: int = 0, longs: int = 0):
        self.end, self.has_string, self.ext_at, self.persid_at = end, has_string, ext_at, persid_at
        # for the resource budget: a string/bytes argument of _BIG_STRING bytes or more was
        # met; how many tuple-building opcodes (TUPLE, TUPLE1-3) and ints whose hash is not
        # their value (LONG arguments of 8 bytes or more) there are
        self.big, self.tuples, self.longs = big, tuples, longs


_BIG_STRING = 1 << 12
_TUPLE_OPS = frozenset((0x74, 0x85, 0x86, 0x87))  # TUPLE, TUPLE1, TUPLE2, TUPLE3
_LONG1, _LONG4 = 0x8A, 0x8B
_INT_LINE_OPS = frozenset(map(ord, "IL"))  # INT, LONG (protocol 0 text)


def _scan(buf, pos: int, more) -> _ScanInfo:
    """Walk the opcodes of the pickle starting at buf[pos] up to and including its STOP.

    ``more(target, line)`` may append data to ``buf`` (a bytearray) and returns its new
    length; it is called when fewer than ``target`` bytes are there (or, with line=True,
    when no newline is left). Raises _Cut if the data ends first, _Bad for a non-opcode.
    Arguments are skipped, never decoded: this is the hot loop, so it stays plain.
    """
    kinds, sizes = _KIND, _SIZE
    start = pos
    n = len(buf)
    has_string = big = False
    tuples = longs = 0
    ext_at = persid_at = -1
    while True:
        if pos >= n:
            n = more(pos + 1, False)
            if pos >= n:
                raise _Cut(pos, None)
        code = buf[pos]
        kind = kinds[code]
        op = pos
        pos += 1
        if kind == _NOARG:
            if code == _STOP:
                return _ScanInfo(pos, has_string, ext_at, persid_at, big, tuples, longs)
            if code == 0x51 and persid_at < 0:  # BINPERSID
                persid_at = op
            elif code in _TUPLE_OPS:
                tuples += 1
        elif kind == _FIXED:
            pos += sizes[code]
            if pos > n:
                n = more(pos, False)
                if pos > n:
                    raise _Cut(op, code)
            if code in _EXT_OPS:
                if ext_at < 0:
                    ext_at = op
            elif code == _LONG_BINPUT:
                if int.from_bytes(buf[op + 1:pos], "little") > pos - start + _MEMO_SLACK:
                    raise _Bad(op, "LONG_BINPUT memo index is impossibly large")
        elif kind == _LINE or kind == _LINE2:
            for _ in range(1 if kind == _LINE else 2):
                nl = buf.find(b"\n", pos)
                while nl < 0:
                    old = n
                    n = more(n + 1, True)
                    if n == old:
                        raise _Cut(op, code)
                    nl = buf.find(b"\n", old)
                if nl - pos > 18:
                    if code in _INT_LINE_OPS:
                        longs += 1
                    elif nl - pos >= _BIG_STRING:
                        big = True
                if code == _PUT and nl - pos > 6:
                    try:
                        index = int(buf[pos:nl])
                    except ValueError:
                        raise _Bad(op, "PUT argument is not a number") from None
                    if index > nl - start + _MEMO_SLACK:
                        raise _Bad(op, "PUT memo index is impossibly large")
                pos = nl + 1
            if code in _STRING_OPS:
                has_string = True
            elif code == 0x50 and persid_at < 0:  # PERSID
                persid_at = op
        elif kind is None:
            raise _Bad(op, f"byte 0x{code:02x} is not a pickle opcode")
        else:  # an argument preceded by its length
            width = sizes[code]
            if pos + width > n:
                n = more(pos + width, False)
                if pos + width > n:
                    raise _Cut(op, code)
            length = int.from_bytes(buf[pos:pos + width], "little", signed=kind == _LEN4S)
            if length < 0:
                raise _Bad(op, f"{_OPNAME[code]} has a negative length")
            if length >= 8:
                if code == _LONG1 or code == _LONG4:
                    longs += 1
                elif length >= _BIG_STRING:
                    big = True
            pos += width + length
            if pos > n:
                n = more(pos, False)
                if pos > n:
                    raise _Cut(op, code)
            if code in _STRING_OPS:
                has_string = True


# The fast walk: the same opcode walk as _scan, three times faster on big pickles because the
# common opcodes cost one table lookup. It only ever accepts: anything that _scan would
# report (a byte that is no opcode, a negative length, a large memo index, data that ends)
# makes it give up, and _scan walks the pickle again to report the problem exactly.

_STEP = [0] * 256  # opcode -> its whole size, for fixed-size opcodes that need no check (else 0)
for _c in range(256):
    if _KIND[_c] == _NOARG and _c not in (_STOP, 0x51) and _c not in _TUPLE_OPS:
        _STEP[_c] = 1
    elif _KIND[_c] == _FIXED and _c not in _EXT_OPS and _c != _LONG_BINPUT:
        _STEP[_c] = 1 + _SIZE[_c]


class _GiveUp(Exception):
    """The fast walk met something that _scan must look at."""


def _walk(buf, pos: int, start: int, state: list):
    """Walk opcodes from buf[pos] (an opcode boundary) as _scan does; ``start`` is the pickle's start.

    ``state`` is [has_string, ext_at, persid_at, big, tuples, longs], updated as _scan would. Returns
    (position after the STOP, True), or (the start of the first opcode that is not complete
    in buf, False): read more and call again from there. Raises _GiveUp where _scan would
    raise _Bad, or would check more than this does (a long PUT argument).
    """
    steps, kinds, sizes = _STEP, _KIND, _SIZE
    n = len(buf)
    prev = pos
    try:
        while True:
            code = buf[pos]  # IndexError at the end of buf
            prev = pos
            step = steps[code]
            if step:
                pos += step  # may pass the end of buf: the next buf[pos] tells
                continue
            if code == 0x8C or code == 0x43:  # SHORT_BINUNICODE, SHORT_BINBYTES
                pos += 2 + buf[pos + 1]
                if buf[pos] == 0x94:  # MEMOIZE, which protocol 4 writes after each string
                    pos += 1
                continue
            kind = kinds[code]
            if kind == _NOARG:
                if code == _STOP:
                    return pos + 1, True
                if code in _TUPLE_OPS:
                    state[4] += 1
                elif state[2] < 0:  # BINPERSID
                    state[2] = pos
                pos += 1
            elif kind == _FIXED:  # EXT1/2/4, LONG_BINPUT
                end = pos + 1 + sizes[code]
                if end > n:
                    return pos, False
                if code == _LONG_BINPUT:
                    if int.from_bytes(buf[pos + 1:end], "little") > end - start + _MEMO_SLACK:
                        raise _GiveUp
                elif state[1] < 0:
                    state[1] = pos
                pos = end
            elif kind == _LINE or kind == _LINE2:
                nl = buf.find(b"\n", pos + 1)
                if nl >= 0 and kind == _LINE2:
                    nl = buf.find(b"\n", nl + 1)
                if nl < 0:
                    return pos, False
                if code == _PUT and nl - pos - 1 > 6:
                    raise _GiveUp
                if nl - pos > 19:
                    if code in _INT_LINE_OPS:
                        state[5] += 1
                    elif nl - pos > _BIG_STRING:
                        state[3] = True
                if code in _STRING_OPS:
                    state[0] = True
                elif code == 0x50 and state[2] < 0:  # PERSID
                    state[2] = pos
                pos = nl + 1
            elif kind is None:
                raise _GiveUp
            else:  # an argument preceded by its length
                width = sizes[code]
                if pos + 1 + width > n:
                    return pos, False
                length = int.from_bytes(buf[pos + 1:pos + 1 + width], "little", signed=kind == _LEN4S)
                if length < 0:
                    raise _GiveUp
                end = pos + 1 + width + length
                if end > n:
                    return pos, False
                if code in _STRING_OPS:
                    state[0] = True
                if length >= 8:
                    if code == _LONG1 or code == _LONG4:
                        state[5] += 1
                    elif length >= _BIG_STRING:
                        state[3] = True
                pos = end
    except IndexError:
        # past the end: if the last opcode ran over it, that opcode (at prev) is not complete
        return (pos if pos <= n else prev), False


def _scan_complete(buf, start: int = 0) -> _ScanInfo | None:
    """_scan's answer for a pickle that is whole in buf, by the fast walk; None if it gives up."""
    state = [False, -1, -1, False, 0, 0]
    try:
        end, done = _walk(buf, start, start, state)
    except _GiveUp:
        return None
    return _ScanInfo(end, *state) if done else None


def _cut_message(cut: _Cut, base: int) -> str:
    if cut.code is None:
        return f"truncated pickle: data ends at byte {cut.offset + base} before its STOP opcode"
    return (f"truncated pickle: data ends inside the {_OPNAME[cut.code]} opcode "
            f"at byte {cut.offset + base}")


# --------------------------------------------------------------------------------------
# Sniffing
# --------------------------------------------------------------------------------------

def _arg_looks_right(code: int, arg: bytes, complete: bool) -> bool:
    """Protocol 0 arguments are text with a known shape: check it, so text files do not pass."""
    ch = chr(code)
    if ch in "IgpL":
        body = arg[:-1] if (ch == "L" and complete and arg.endswith(b"L")) else arg
        body = body[1:] if body[:1] in (b"-", b"+") and ch in "IL" else body
        return body.isdigit() if (complete or body) else True
    if ch == "F":
        return all(c in b"0123456789.eE+-naif" for c in arg) and (bool(arg) or not complete)
    if ch == "S":
        if not arg:
            return not complete
        if arg[:1] not in (b"'", b'"'):
            return False
        return not complete or (len(arg) >= 2 and arg[-1:] == arg[:1])
    return True


def _arg_names_ok(arg: bytes) -> bool:
    """GLOBAL/INST module or name: printable ASCII without spaces."""
    return all(0x21 <= c < 0x7F for c in arg)


def pickle_protocol(head: bytes, whole: bool = False) -> int | None:
    """Best guess of the protocol of a pickle starting with ``head`` (its first bytes).

    2-5 from the PROTO header; 1 for a binary pickle without header (starts with ``}``,
    ``]``, ``(``, ``K``, ``X``...); 0 for a pickle made only of protocol-0 (text) opcodes,
    such as ``(dp0`` or ``S'...'``; None if it does not look like a pickle.

    The head is walked opcode by opcode with a simulated stack (MARKs and item counts), and
    text arguments must have their proper shape, so JSON, SQLite, gdbm/BDB files and plain
    text are very unlikely to pass. A head shorter than its first opcode may still pass.
    ``whole``: ``head`` is the whole file, so a pickle without a PROTO header must end with
    STOP inside it (random bytes often begin with a few valid opcodes; a truncated pickle with
    a header is still recognised, and then reported as truncated).
    """
    head = bytes(head[:4096])
    if not head:
        return None
    pos, proto = 0, None
    if head[0] == 0x80:
        if len(head) < 2 or not 2 <= head[1] <= 5:
            return None
        pos, proto = 2, head[1]
    stack: list[bool] = []  # True marks a MARK
    binary = False
    while pos < len(head):
        code = head[pos]
        kind = _KIND[code]
        if kind is None:
            return None
        binary = binary or code in _BINARY_OPS
        pos += 1
        complete = True
        if kind == _FIXED:
            pos += _SIZE[code]
            complete = pos <= len(head)
        elif kind in (_LINE, _LINE2):
            for _ in range(1 if kind == _LINE else 2):
                nl = head.find(b"\n", pos)
                arg = head[pos:] if nl < 0 else head[pos:nl]
                complete = nl >= 0
                if kind == _LINE2:
                    if not _arg_names_ok(arg) or (complete and not arg):
                        return None
                elif not _arg_looks_right(code, arg, complete):
                    return None
                if not complete:
                    break
                pos = nl + 1
        elif kind != _NOARG:
            width = _SIZE[code]
            if pos + width <= len(head):
                length = int.from_bytes(head[pos:pos + width], "little", signed=kind == _LEN4S)
                if length < 0:
                    return None
            pos += width  # the argument itself may run past the head
            if pos <= len(head):
                pos += length
            complete = pos <= len(head)
        # Simulate the stack: every opcode must find what it consumes.
        desc = pickletools.code2op[chr(code)]
        before = desc.stack_before
        if pickletools.markobject in before:
            i = before.index(pickletools.markobject)
            need = len(before) - i - 2  # items required after the MARK (OBJ needs a class)
            if True not in stack:
                return None
            m = len(stack) - 1 - stack[::-1].index(True)
            if len(stack) - m - 1 < need or m < i or True in stack[m - i:m]:
                return None
            del stack[m - i:]
        else:
            if len(stack) < len(before) or True in stack[len(stack) - len(before):]:
                return None
            del stack[len(stack) - len(before):]
        stack.extend(s is pickletools.markobject for s in desc.stack_after)
        if code == _STOP:
            if stack:
                return None
            break
        if not complete:
            break
    else:
        code = None
    if proto is not None:
        return proto
    if whole and code != _STOP:
        return None
    return 1 if binary else 0


def pickle_length(data: bytes, start: int = 0) -> int | None:
    """Length of the complete pickle at ``data[start:]`` (through its STOP), or None.

    Only walks the opcodes (nothing is built or decoded), so it is safe on any input and
    works for Python 2 pickles with non-ASCII strings too. None if the data ends first or
    holds a byte that is not an opcode.
    """
    data = bytes(data) if isinstance(data, memoryview) else data
    try:
        info = _scan_complete(data, start) or _scan(data, start, lambda target, line: len(data))
        return info.end - start
    except (_Cut, _Bad):
        return None


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
    time-zone data directories. (The standard pickler's form, a classmethod fetched with
    builtins.getattr, stays refused.)"""

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

_RESTRICTED = frozenset({("builtins", "object"), ("_codecs", "encode"), ("copyreg", "_reconstructor")})

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
        raise ConverterError(f"--allow {module}.{name}: cannot import it ({type(exc).__name__}: {exc})") from None


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


# --------------------------------------------------------------------------------------
# The resource budget, before and after the C unpickler builds anything
# --------------------------------------------------------------------------------------
#
# The C unpickler hashes dict keys and set members as it builds them, and CPython hashes a
# tuple by hashing its items, recursively, in C: a tuple nested a million deep crashes the
# process, and a tuple made of shared tuples takes exponential time. Ints hash to their value
# modulo 2**61 - 1, so a dict of many ints sharing one hash takes quadratic time. Neither can
# be stopped once load() runs, so a pickle with more than one tuple opcode, or with many big
# ints, is first walked once more with a model of the unpickler's stack (_model). A pickle
# with no such opcodes (the usual record of scalars) costs nothing extra.

_MODEL_OPS: dict[int, tuple] = {}  # opcode -> (items below the mark it takes, or -1 if no mark; items taken; items made)
for _op in pickletools.opcodes:
    _before = _op.stack_before
    if pickletools.markobject in _before:
        _MODEL_OPS[ord(_op.code)] = (_before.index(pickletools.markobject), 0, len(_op.stack_after))
    else:
        _MODEL_OPS[ord(_op.code)] = (-1, len(_before), len(_op.stack_after))
_MARK = None
_HASHING_OPS = frozenset((0x73, 0x75, 0x64, 0x90, 0x91))  # SETITEM, SETITEMS, DICT, ADDITEMS, FROZENSET
_PAIR_OPS = frozenset((0x75, 0x64))
_GET_OPS = {ord("g"): None, ord("h"): 1, ord("j"): 4}
_PUT_OPS = {ord("p"): None, ord("q"): 1, ord("r"): 4}


def _model(data, label: str, base: int, want_tuples: bool, want_longs: bool) -> None:
    """Walk the stack of one complete pickle as the unpickler would build it, keeping per item
    only the work of hashing it (tuples: 1 + their items' work, and their depth; a big int:
    its size in words). Refuses a tuple past the budget's depth, or whose hash work passes
    both hash_work and the work its own opcodes account for (shared tuples), and ints that
    share hash values past the collision limit."""
    from converter import budget

    limits = budget.active()
    depth_limit, work_limit, collisions = limits.depth, limits.hash_work, limits.collisions
    kinds, sizes, ops = _KIND, _SIZE, _MODEL_OPS
    stack: list = []  # None: a MARK; an int: hash work of a non-tuple; (depth, work): a tuple
    memo: dict = {}
    own = 0  # items of every tuple made so far: the work hashing them costs without sharing
    hashes: dict = {}  # big int hash -> [first value, other values seen]
    where = lambda at: f"{label}: at byte {at + base}"  # noqa: E731
    pos, n = 0, len(data)
    push_step, append = _PUSH_STEP, stack.append
    while pos < n:
        code = data[pos]
        step = push_step[code]
        if step:  # the common opcodes: a scalar (or an empty container) of fixed size
            append(1)
            pos += step
            continue
        if code == 0x8C or code == 0x43:  # SHORT_BINUNICODE, SHORT_BINBYTES
            append(1)
            pos += 2 + data[pos + 1]
            continue
        if code == 0x94:  # MEMOIZE
            if stack:
                memo[len(memo)] = stack[-1]
            pos += 1
            continue
        op = pos
        kind = kinds[code]
        pos += 1
        arg_start = pos
        if kind == _FIXED:
            pos += sizes[code]
        elif kind == _LINE or kind == _LINE2:
            pos = data.index(b"\n", pos) + 1
            if kind == _LINE2:
                pos = data.index(b"\n", pos) + 1
        elif kind != _NOARG:
            width = sizes[code]
            length = int.from_bytes(data[pos:pos + width], "little", signed=kind == _LEN4S)
            arg_start = pos + width
            pos = arg_start + length
        if code == _STOP:
            return
        if code in _TUPLE_OPS:
            if code == 0x74:  # TUPLE: the items since the MARK
                m = len(stack) - 1
                while stack[m] is not _MARK:
                    m -= 1
                items = stack[m + 1:]
                del stack[m:]
            else:
                count = code - 0x84
                items = stack[-count:]
                del stack[-count:]
                if len(items) < count or _MARK in items:
                    raise ValueError("TUPLE1-3 on a MARK")  # the unpickler refuses it too
            depth, work = 1, 1
            for item in items:
                if type(item) is tuple:
                    depth = max(depth, item[0] + 1)
                    work += item[1]
                else:
                    work += item
            own += len(items) + 1
            stack.append((depth, work))
            continue
        if code in _HASHING_OPS:  # keys or members about to be hashed
            if code == 0x73:  # SETITEM
                hashed = stack[-2:-1]
            else:
                m = len(stack) - 1
                while stack[m] is not _MARK:
                    m -= 1
                hashed = stack[m + 1::2] if code in _PAIR_OPS else stack[m + 1:]
            for item in hashed:
                if type(item) is not tuple:
                    continue
                depth, work = item
                if depth_limit is not None and depth > depth_limit:
                    raise budget.refuse(where(op), f"a tuple nested more than {depth_limit:,} deep is a key or "
                                                   f"member (hashing it would crash the interpreter)",
                                        "depth", depth_limit)
                if work_limit is not None and work > work_limit and work > own:
                    raise budget.refuse(where(op), f"a key or member made of shared tuples would take "
                                                   f"{work:,} steps to hash", "hash_work", work_limit)
        if code == _LONG1 or code == _LONG4 or (kind == _LINE and code in _INT_LINE_OPS):
            if kind == _LINE:
                text = data[arg_start:pos - 1].rstrip(b"L")
                size = len(text) // 19 + 1
                value = None
                if want_longs and 18 < len(text) < 1000:
                    try:
                        value = int(text)
                    except ValueError:
                        value = None
            else:
                size = (pos - arg_start) // 8 + 1
                value = int.from_bytes(data[arg_start:pos], "little", signed=True) if want_longs else None
            if value is not None and not -(2**61) < value < 2**61:
                entry = hashes.setdefault(hash(value), [value, 0])
                if value != entry[0]:
                    entry[1] += 1
                    if collisions is not None and entry[1] > collisions:
                        raise budget.refuse(where(op), f"more than {collisions:,} ints that share one "
                                                       f"hash value (hash flooding)", "collisions", collisions)
            stack.append(size)
            continue
        if code in _GET_OPS:
            width = _GET_OPS[code]
            index = int(data[arg_start:pos - 1]) if width is None else int.from_bytes(data[arg_start:pos], "little")
            stack.append(memo.get(index, 1))
            continue
        if code in _PUT_OPS:
            width = _PUT_OPS[code]
            index = int(data[arg_start:pos - 1]) if width is None else int.from_bytes(data[arg_start:pos], "little")
            if stack:
                memo[index] = stack[-1]
            continue
        if code == 0x94:  # MEMOIZE
            if stack:
                memo[len(memo)] = stack[-1]
            continue
        if code == 0x28:  # MARK
            stack.append(_MARK)
            continue
        if code == 0x32:  # DUP
            if stack:
                stack.append(stack[-1])
            continue
        below, taken, made = ops[code]
        if below >= 0:
            m = len(stack) - 1
            while m >= 0 and stack[m] is not _MARK:
                m -= 1
            del stack[max(m - below, 0):]
        elif taken:
            del stack[-taken:]
        if made:
            stack.extend([1] * made)


_PUSH_STEP = [0] * 256
for _op in pickletools.opcodes:
    _c = ord(_op.code)
    if (not _op.stack_before and len(_op.stack_after) == 1 and _op.stack_after[0] is not pickletools.markobject
            and _KIND[_c] in (_NOARG, _FIXED) and _c not in _GET_OPS and _c not in _EXT_OPS
            and _c not in _PERSID_OPS):
        _PUSH_STEP[_c] = 1 + (_SIZE[_c] if _KIND[_c] == _FIXED else 0)


def _check_before_load(data, info: _ScanInfo, label: str, base: int) -> None:
    from converter import budget

    limits = budget.active()
    want_tuples = info.tuples >= 2 and (limits.depth is not None or limits.hash_work is not None)
    want_longs = limits.collisions is not None and info.longs > limits.collisions
    if want_tuples or want_longs:
        try:
            _model(data, label, base, want_tuples, want_longs)
        except (IndexError, ValueError):
            # the model met a stack the real unpickler would refuse too: load() says what
            pass


def _check_after_load(obj, size: int, label: str) -> None:
    """Refuse a value whose strings and bytes, counted once per use, pass its pickle's own
    size by more than the budget's bytes (100 records sharing one 50 MB bytes object would
    write 5 GB). The walk counts containers once per use as the writers do, and stops where
    shared containers alone would make the writers refuse."""
    from converter import budget

    limits = budget.active()
    if limits.bytes is None:
        return
    allowed = size + limits.bytes
    shared_limit = limits.shared
    sized = (str, bytes, bytearray)
    total = distinct = repeated = 0
    seen: set = set()
    stack = [obj]
    pop, push = stack.pop, stack.append
    while stack:
        x = pop()
        kind = type(x)
        if kind in sized:
            total += len(x)
            if total > allowed:
                raise budget.refuse(label, f"its strings and bytes expand to more than {allowed:,} bytes "
                                           f"(shared objects counted once per use)", "bytes", limits.bytes)
            continue
        if kind is dict or kind is collections.OrderedDict or kind is collections.defaultdict:
            items = [*x.keys(), *x.values()]
        elif kind in (list, tuple, set, frozenset, collections.deque):
            items = x
        else:
            continue
        if id(x) in seen:
            repeated += len(items)
            if shared_limit is not None and repeated > shared_limit and repeated > 100 * distinct:
                return  # the writers refuse this by its shared containers, or keep the sharing
        else:
            seen.add(id(x))
            distinct += len(items)
        for item in items:
            if type(item) in sized:
                total += len(item)
            elif type(item) not in _SCALAR_KINDS:
                push(item)
        if total > allowed:
            raise budget.refuse(label, f"its strings and bytes expand to more than {allowed:,} bytes "
                                       f"(shared objects counted once per use)", "bytes", limits.bytes)


_SCALAR_KINDS = frozenset((int, float, bool, type(None), complex))


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
    _check_py2_strings(load, label)
    if info.big:
        _check_after_load(obj, info.end, label)
    return obj


def _check_py2_strings(load: _Load, label: str) -> None:
    """Refuse the load if a Python 2 str was not UTF-8 (other than a datetime state)."""
    if not load.bad:
        return
    for raw, count in load.bad.items():
        if count > load.consumed[raw]:
            shown = raw if len(raw) <= 40 else raw[:40] + b"..."
            raise FormatError(
                f"{label}: Python 2 string {shown!r} is not UTF-8; use --py2-strings latin1 "
                f"to read such strings as latin-1, or --py2-strings bytes to keep them as bytes")


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------

def loads(data: bytes, *, allow=(), trust: bool = False, py2_strings: str = "utf8", what: str = "") -> object:
    """Unpickle one pickle from ``data`` allowing only plain data (plus ``allow``).

    ``allow``: extra globals, as "module.Name" strings or (module, name) pairs.
    ``trust``: use the full standard unpickler (runs code from the data).
    ``py2_strings``: what Python 2 ``str`` values become: "utf8" (str; error if not UTF-8),
    "latin1" (str decoded as latin-1) or "bytes".
    ``what``: names the record or file in error messages.

    Raises UnsafePickleError for a refused global or opcode, FormatError for anything
    corrupt, truncated, or followed by extra bytes.
    """
    policy = _policy(allow, trust, py2_strings)
    label = what or "pickle"
    if isinstance(data, memoryview):
        data = data.tobytes()
    elif not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"loads() needs bytes, not {type(data).__name__}")
    try:
        info = _scan_complete(data) or _scan(data, 0, lambda target, line: len(data))
    except _Cut as cut:
        if not data:
            raise FormatError(f"{label}: empty data, not a pickle") from None
        raise FormatError(f"{label}: {_cut_message(cut, 0)}") from None
    except _Bad as bad:
        raise FormatError(f"{label}: not a valid pickle: {bad.reason} (byte {bad.offset})") from None
    if info.end != len(data):
        raise FormatError(f"{label}: {len(data) - info.end} unexpected bytes after the pickle's "
                          f"end at byte {info.end}")
    return _unpickle(data, info, policy, what)


_MAX_READ = 1 << 24


class _Reader:
    """Reads pickles from a binary stream, one scan at a time.

    exact=True reads only what the scanner asks for (never past a STOP), for streams that
    cannot seek back; otherwise it reads chunks, growing from 4 KiB.
    """

    def __init__(self, file: BinaryIO, exact: bool):
        self.file = file
        self.exact = exact
        self.buf = bytearray()
        self.chunk = 4096
        self.eof = False
        self.total = 0  # bytes read from the file
        self.readline = getattr(file, "readline", None)

    def _read(self, n: int) -> bytes:
        data = self.file.read(n)
        if data is None:  # a non-blocking stream with nothing ready
            raise FormatError("cannot read a pickle from a non-blocking stream with no data ready")
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError("pickles must be read from a binary file (opened with 'rb')")
        return data

    def more(self, target: int, line: bool) -> int:
        buf = self.buf
        while len(buf) < target and not self.eof:
            if self.exact:
                if line and self.readline is not None:
                    data = self.readline()
                    if not isinstance(data, (bytes, bytearray)):
                        raise TypeError("pickles must be read from a binary file (opened with 'rb')")
                else:  # without readline, a line comes a byte at a time
                    data = self._read(1 if line else min(target - len(buf), _MAX_READ))
            else:
                # an opcode may claim any length (BINUNICODE8: up to 2**64): read what is
                # there, a bounded piece at a time, so a lie ends as a truncation, not a MemoryError
                data = self._read(min(max(self.chunk, target - len(buf)), _MAX_READ))
                self.chunk = min(self.chunk * 2, 1 << 20)
            if not data:
                self.eof = True
            self.total += len(data)
            buf += data
            if line:
                break  # the scanner looks for the newline in what came
        return len(buf)

    def at_end(self) -> bool:
        """True when no byte is left (reads at most one chunk or byte to find out)."""
        return not self.buf and self.more(1, False) == 0

    def take(self, what: str, base: int) -> tuple[bytes, _ScanInfo]:
        """Scan one pickle at the start of the buffer; return its bytes and remove them."""
        label = what or "pickle"
        info = None
        if not self.exact:
            # the fast walk, resumed after each read; on anything unusual _scan takes over
            state = [False, -1, -1, False, 0, 0]
            pos = 0
            try:
                while True:
                    pos, done = _walk(self.buf, pos, 0, state)
                    if done:
                        info = _ScanInfo(pos, *state)
                        break
                    n = len(self.buf)
                    if self.more(n + 1, False) == n:
                        break  # the data ends inside the pickle: _scan says where
            except _GiveUp:
                pass
        if info is None:
            try:
                info = _scan(self.buf, 0, self.more)
            except _Cut as cut:
                raise FormatError(f"{label}: {_cut_message(cut, base)}") from None
            except _Bad as bad:
                raise FormatError(f"{label}: not a valid pickle: {bad.reason} (byte {bad.offset + base})") from None
        if info.end == len(self.buf):  # the usual case of one pickle per file: no copy
            data, self.buf = self.buf, bytearray()
        else:
            with memoryview(self.buf) as view:
                data = view[:info.end].tobytes()
            del self.buf[:info.end]
        return data, info


def load(file: BinaryIO, *, allow=(), trust: bool = False, py2_strings: str = "utf8", what: str = "") -> object:
    """Unpickle one pickle from a binary file object, like ``loads``.

    Leaves the file positioned just after the pickle's STOP opcode: a seekable file is read
    in chunks and seeked back; any other stream is read no further than the STOP.
    """
    policy = _policy(allow, trust, py2_strings)
    label = what or "pickle"
    try:
        seekable = file.seekable()
    except (AttributeError, OSError, ValueError):
        seekable = False
    start = file.tell() if seekable else 0
    reader = _Reader(file, exact=not seekable)
    if reader.at_end():
        raise FormatError(f"{label}: no pickle: the file is empty (or at its end)")
    try:
        data, info = reader.take(what, start)
    finally:
        if seekable:
            # Right after the STOP (what was read beyond it is still in the buffer), or back
            # where it was if the pickle was bad (then the buffer holds all that was read).
            file.seek(start + reader.total - len(reader.buf))
    return _unpickle(data, info, policy, what, start)


def iter_pickles(file: BinaryIO, *, name: str = "", allow=(), trust: bool = False,
                 py2_strings: str = "utf8") -> Iterator[object]:
    """Yield every pickle of a stream holding several back to back (appended with 'ab').

    Ends cleanly only where the stream ends before a pickle starts (an empty stream yields
    nothing). A pickle cut short or followed by bytes that are no pickle raises FormatError
    naming ``name``, the pickle's number (from 1) and its byte offset. Works on streams that
    cannot seek (pipes, stdin); reads ahead in chunks, so stopping early leaves the stream
    position past the last pickle yielded.
    """
    policy = _policy(allow, trust, py2_strings)
    label = name or "the input"
    try:
        base = file.tell() if file.seekable() else 0
    except (AttributeError, OSError, ValueError):
        base = 0
    reader = _Reader(file, exact=False)
    index = 0
    while not reader.at_end():
        index += 1
        what = f"pickle #{index} of {label} at byte {base}"
        data, info = reader.take(what, base)
        obj = _unpickle(data, info, policy, what, base)
        del data  # not kept while the caller works on obj
        yield obj
        base += info.end
