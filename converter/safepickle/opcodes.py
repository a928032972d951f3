"""The opcode walk of a pickle, done before anything is built, and pickle sniffing.

``_scan`` walks a pickle opcode by opcode without decoding anything: it finds where the pickle
ends, refuses EXT/PERSID, bounds memo indexes and notes what the later checks need (Python 2
strings, tuple opcodes, big ints and strings). ``_walk`` is the same walk, faster, for the common
case. ``pickle_protocol`` and ``pickle_length`` are the sniffing entry points.
"""

from __future__ import annotations

import pickletools



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
