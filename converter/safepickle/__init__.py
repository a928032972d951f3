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

from typing import BinaryIO, Iterator

from converter.errors import FormatError

from .allowlist import DEFAULT_ALLOWED, PY2_STRING_MODES, _policy
from .opcodes import (_Bad, _Cut, _GiveUp, _ScanInfo, _cut_message, _scan, _scan_complete, _walk, pickle_length,
                      pickle_protocol)
from .unpickler import _unpickle

__all__ = ["DEFAULT_ALLOWED", "PY2_STRING_MODES", "pickle_protocol", "pickle_length", "loads", "load", "iter_pickles"]


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
