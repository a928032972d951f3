"""Stream big JSON and JSON Lines files without loading them whole (stdlib only).

Both readers return values as parsed JSON, *not* tag-decoded: the caller runs
``converter.jsontags.decode`` on them.  Parsing is strict, the same rules for both:

- NaN, Infinity and -Infinity, duplicate keys in any object, and ``\\uD800``-style
  escapes of a lone surrogate (the str could never be written as UTF-8 again) are
  FormatErrors naming the position.  Integers of any length are read exactly.
- Input must be UTF-8 (binary files) or str (text files); invalid UTF-8 and, in
  text files, lone surrogate characters are FormatErrors.
- One UTF-8 byte order mark at the very start is skipped (RFC 8259 lets parsers
  ignore it; some Windows tools write it).
- Nesting depth is not limited: json's C parser is used and, when it hits its
  recursion limit (near depth 1000), an iterative parser re-reads that value.
- Every error is a one-line converter.errors.FormatError naming the file
  (``name``) and the position: "byte N (line L)" for binary files,
  "character N (line L)" for text files, "line L column C" for JSON Lines.

``iter_json_members`` reads one JSON document: a top-level object yields
(key, value) per member in file order (duplicate top-level keys are an error); a
top-level array yields (index, element) with index 0..n-1; any other top-level
value (a string, number, true, false, null) yields one record (0, value).  An
empty or whitespace-only file, trailing data after the document and a
truncated document are FormatErrors; records before the problem have already
been yielded, so callers that must not half-convert should collect first.

``iter_json_lines`` reads JSON Lines: lines are split on b"\\n" only (a "\\r"
before it is whitespace, so "\\r\\n" files work; U+2028 and \\x85 are not line
breaks), each line holds one JSON value, and blank (whitespace-only) lines are
skipped.  It yields (0-based line number, value), so the numbers of records
after a blank line skip one.  An empty file is zero records, not an error.  A
file cut exactly at a line end cannot be told from a shorter file; a file cut
inside a line is an error on that line.  Open files in binary mode: a text
file opened with Python's default universal newlines has already turned a bare
"\\r" (JSON whitespace) into a line break.

Memory: iter_json_members holds one element plus about two chunks, and the
set of top-level keys (to refuse duplicates); a single huge
element is read by doubling the buffer, so each byte is parsed O(1) times on
average.  A document cut or broken inside a string makes the reader read ahead
to the end of the file before it reports the error.
"""

from __future__ import annotations

import codecs
import json
import re
from typing import Iterator

from converter.budget import BudgetError, check_digit_text
from converter.errors import FormatError
from converter.jsontags.text import _LONE_SURROGATE_CHAR, _problem, _raw_decode, _short

CHUNK_SIZE = 64 * 1024

_WS = re.compile(r"[ \t\n\r]*")
_BOM = "\ufeff"
# A syntax error this close to the end of the buffer may be a value cut by the
# buffer end (e.g. "tru" or "1." or "\\u12"), so read more before believing it.
_CUT_MARGIN = 32


def _prefix(name: str) -> str:
    return f"{name}: " if name else ""


class _Reader:
    """A str buffer over a binary or text file, tracking the file offset of the buffer start."""

    def __init__(self, file, name, chunk_size):
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        self.file = file
        self.name = name
        self.chunk_size = chunk_size
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.binary = None  # decided by the first read
        self.decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self.bytes_fed = 0  # bytes given to the decoder so far
        self.base = 0  # file offset (bytes, or characters for text files) of buf[0]
        self.base_line = 1  # line number of buf[0]
        self.total_read = 0  # bytes (or characters) read from the file
        self.started = False  # has any text been decoded yet (for the BOM)

    # --- reading -----------------------------------------------------------
    def fill(self, wanted=None) -> bool:
        """Append at least one chunk (``wanted`` characters or more); False at end of file."""
        if self.eof:
            return False
        size = max(self.chunk_size, wanted or 0)
        data = self.file.read(size)
        if self.binary is None:
            self.binary = isinstance(data, (bytes, bytearray, memoryview))
        if self.binary:
            data = bytes(data)
            pending = len(self.decoder.getstate()[0])
            try:
                text = self.decoder.decode(data, final=not data)
            except UnicodeDecodeError as exc:
                offset = self.bytes_fed - pending + exc.start
                if not data:
                    raise self.error_at_byte("file ends inside a UTF-8 character", offset) from None
                raise self.error_at_byte("invalid UTF-8", offset) from None
            self.bytes_fed += len(data)
        else:
            text = data
            if not text.isascii():
                bad = _LONE_SURROGATE_CHAR.search(text)
                if bad:
                    offset = self.total_read + bad.start()
                    raise FormatError(f"{_prefix(self.name)}lone surrogate character at character {offset}")
        if not self.started and text:
            self.started = True
            if text.startswith(_BOM):
                text = text[1:]  # RFC 8259: a parser may ignore a byte order mark
                self.base += 3 if self.binary else 1
        self.total_read += len(data)
        if not data:
            self.eof = True
            return False
        self.trim()
        self.buf += text
        return True

    def trim(self):
        """Drop the consumed part of the buffer, keeping its byte and line counts."""
        if self.pos and self.pos >= len(self.buf) // 2:
            done = self.buf[:self.pos]
            self.base += len(done.encode("utf-8", "surrogatepass")) if self.binary else len(done)
            self.base_line += done.count("\n")
            self.buf = self.buf[self.pos:]
            self.pos = 0

    def more(self):
        """Read more for a value that starts at self.pos and is cut by the buffer end.

        Doubling what is unparsed keeps the re-parsing of one huge value linear.
        """
        return self.fill(len(self.buf) - self.pos)

    def peek(self) -> str:
        """Skip whitespace; the next character, or "" at the end of the file."""
        pos = self.pos
        if pos < len(self.buf):
            char = self.buf[pos]
            if char not in " \t\n\r":  # the usual case: no whitespace to skip
                return char
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.fill():
                return ""

    # --- positions and errors ----------------------------------------------
    def where(self, pos) -> str:
        line = self.base_line + self.buf.count("\n", 0, pos)
        if self.binary is False:
            return f"character {self.base + pos} (line {line})"
        return f"byte {self.base + len(self.buf[:pos].encode('utf-8', 'surrogatepass'))} (line {line})"

    def error(self, problem, pos) -> FormatError:
        return FormatError(f"{_prefix(self.name)}{problem} at {self.where(pos)}")

    def error_at_byte(self, problem, offset) -> FormatError:
        return FormatError(f"{_prefix(self.name)}{problem} at byte {offset}")

    # --- parsing -------------------------------------------------------------
    def value(self):
        """Parse the JSON value at self.pos (after whitespace), reading more as needed."""
        while True:
            try:
                value, end = _raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                unterminated = exc.msg.startswith("Unterminated string")
                if (unterminated or exc.pos >= len(self.buf) - _CUT_MARGIN) and self.more():
                    continue
                if unterminated or exc.pos >= len(self.buf.rstrip(" \t\r\n")):
                    raise self.error(f"file ends inside a JSON value, truncated? ({_problem(exc)})", exc.pos) from None
                raise self.error(_problem(exc), exc.pos) from None
            except BudgetError:
                digits = len(self.buf) - len(self.buf.rstrip("0123456789"))
                if digits and not self.eof:  # a number cut by the buffer end: only a part was counted
                    check_digit_text(digits, cut=True)
                raise
            except FormatError as exc:
                pos = getattr(exc, "pos", None)
                if pos is None:  # NaN or a duplicate key: json does not say where
                    raise self.error(f"{exc} in the value", self.pos) from None
                raise self.error(str(exc), pos) from None
            if end > len(self.buf) - _CUT_MARGIN and self.more():
                # a number cut by the buffer end parses as a shorter one ("12" of "123",
                # "-0" of "-0.5"): near the end, read on and parse again
                continue
            self.pos = end
            return value

    def key(self, seen: set) -> str:
        """Parse an object member name (refusing one in ``seen``) and the ':' after it."""
        while True:
            try:
                key, end = json.decoder.scanstring(self.buf, self.pos + 1, True)
            except json.JSONDecodeError as exc:
                if self.more():
                    continue
                raise self.error(f"file ends inside a member name, truncated? ({_problem(exc)})", exc.pos) from None
            break
        if not key.isascii() and _LONE_SURROGATE_CHAR.search(key):
            raise self.error("lone surrogate escape in a member name (UTF-8 cannot hold it)", self.pos)
        if key in seen:
            raise self.error(f"duplicate key {_short(key)}", self.pos)
        seen.add(key)
        self.pos = end
        char = self.peek()
        if char != ":":
            raise self.expected("':' after a member name", char)
        self.pos += 1
        return key

    def expected(self, what, char) -> FormatError:
        if char == "":
            return self.error(f"file ends where {what} was expected (truncated)", self.pos)
        return self.error(f"expected {what}, found {char!r}", self.pos)


def iter_json_members(file, *, name: str = "", chunk_size: int = CHUNK_SIZE) -> Iterator[tuple[object, object]]:
    """Yield the records of one JSON document read from a binary (UTF-8) or text file.

    Top-level object -> (key, value) per member in order; top-level array ->
    (index, element); any other top-level value -> one record (0, value).
    Values are parsed JSON, not tag-decoded.  Reads ``chunk_size`` bytes at a time.
    """
    reader = _Reader(file, name, chunk_size)
    char = reader.peek()
    if char == "":
        raise FormatError(f"{_prefix(name)}{'empty file' if reader.total_read == 0 else 'empty file (only whitespace)'}")
    if char == "[":
        reader.pos += 1
        if reader.peek() == "]":
            reader.pos += 1
        else:
            index = 0
            while True:
                yield index, reader.value()
                index += 1
                char = reader.peek()
                reader.pos += 1
                if char == "]":
                    break
                if char != ",":
                    reader.pos -= 1
                    raise reader.expected("',' or ']' after an array element", char)
                reader.peek()
    elif char == "{":
        reader.pos += 1
        char = reader.peek()
        if char == "}":
            reader.pos += 1
        else:
            seen = set()
            while True:
                if char != '"':
                    raise reader.expected("a member name in double quotes", char)
                key = reader.key(seen)
                reader.peek()
                yield key, reader.value()
                char = reader.peek()
                reader.pos += 1
                if char == "}":
                    break
                if char != ",":
                    reader.pos -= 1
                    raise reader.expected("',' or '}' after an object member", char)
                char = reader.peek()
    else:
        yield 0, reader.value()
    char = reader.peek()
    if char != "":
        raise reader.error("extra data after the JSON document", reader.pos)


def iter_json_lines(file, *, name: str = "") -> Iterator[tuple[int, object]]:
    """Yield (0-based line number, parsed value) for each non-blank line of a JSON Lines file.

    Values are parsed JSON, not tag-decoded.  Errors name the 1-based line number.
    """
    for index, line in enumerate(_lines(file, name)):
        if isinstance(line, bytes):
            if index == 0 and line.startswith(codecs.BOM_UTF8):
                line = line[3:]
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise FormatError(f"{_prefix(name)}line {index + 1}: invalid UTF-8 at byte {exc.start} of the line") from None
        else:
            text = line
            if index == 0 and text.startswith(_BOM):
                text = text[1:]
            if not text.isascii() and _LONE_SURROGATE_CHAR.search(text):
                raise FormatError(f"{_prefix(name)}line {index + 1}: lone surrogate character")
        start = _WS.match(text).end()
        if start == len(text):
            continue  # a blank line holds no record
        try:
            value, end = _raw_decode(text, start)
        except json.JSONDecodeError as exc:
            raise FormatError(f"{_prefix(name)}line {index + 1} column {exc.pos + 1}: {_problem(exc)}") from None
        except FormatError as exc:
            pos = getattr(exc, "pos", None)
            at = f" column {pos + 1}" if pos is not None else ""
            raise FormatError(f"{_prefix(name)}line {index + 1}{at}: {exc}") from None
        end = _WS.match(text, end).end()
        if end != len(text):
            raise FormatError(f"{_prefix(name)}line {index + 1} column {end + 1}: extra data after the JSON value "
                              f"(one value per line)")
        yield index, value


def _lines(file, name):
    """Lines split on "\\n" only, without the "\\n"; binary or text files."""
    first = file.readline()
    if isinstance(first, (bytes, bytearray)):
        # binary readline() splits on b"\n" only
        line = bytes(first)
        while line:
            yield line[:-1] if line.endswith(b"\n") else line
            line = file.readline()
        return
    # text: readline() may split on "\r" too (newline="" mode), so split ourselves
    pending = first
    while True:
        lines = pending.split("\n")
        pending = lines.pop()
        yield from lines
        chunk = file.read(CHUNK_SIZE)
        if not chunk:
            break
        pending += chunk
    if pending:
        yield pending
