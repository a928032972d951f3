"""GNU dbm (gdbm) files and gdbm dumps, read without the C library (recognised in gdbm.py).

Python builds without ``_gdbm`` (the situation this toolkit is for) cannot open
gdbm files at all, and the C library only opens files of its own byte order and
offset size.  This module reads every variant read-only and streaming:

* ``GdbmFile`` walks header -> hash directory -> buckets -> bucket elements over
  the file read whole or memory-mapped (``converter.fileio.FileBytes``).  The layout facts come from GNU gdbm's ``gdbmdefs.h`` /
  ``gdbmopen.c`` (see /work/shared/FORMATS.md); no code was copied.
* ``read_dump`` reads gdbm's ASCII dump (``gdbm_dump``'s default) and the binary
  "flat file" dump (``gdbm_dump -H binary``); ``write_ascii_dump`` and
  ``write_binary_dump`` write dumps that ``gdbm_load`` 1.23 loads.

A damaged file is always a ``FormatError`` naming the file and the offset: every
structure is bounds-checked against the file size before it is used, so a
truncated file never yields a silently short result (the C library 1.23 returns
0 records for a file cut in half) and a bogus size never allocates.
"""

from __future__ import annotations  # 'str | None' annotations on Python 3.10

import base64
import binascii
import os
import struct

from converter.errors import FormatError, UnsupportedValueError
from converter.fileio import FileBytes
from converter.plugins.gdbm import (  # the header layouts and magic numbers
    GDBM_MAGICS,
    _BIN_PREAMBLE,
    _HASH_BITS,
    _NUMSYNC32,
    _NUMSYNC64,
    _magic_of,
    _pick_layout,
)

__all__ = ["GdbmFile", "read_dump", "write_ascii_dump", "write_binary_dump"]


def _shared_lock(f, name: str) -> None:
    """Take gdbm's reader lock, or refuse a file that a writer has open.

    gdbm (1.23 checked) holds flock(LOCK_EX) on a database open for writing and LOCK_SH
    for reading. A writer's changes may sit half-written in its buffers, so reading under
    it could give a corrupt or inconsistent result: refuse instead of waiting. Holding the
    shared lock while reading also keeps a writer from starting until we are done (its
    gdbm_open fails rather than waits). Where flock is missing or unsupported (Windows,
    some network file systems) the file is read unlocked, as gdbm itself would.
    """
    try:
        import fcntl
    except ImportError:
        return
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        raise FormatError(f"{name}: locked by another process that has it open for writing; close it first") from None
    except OSError:
        pass


class GdbmFile:
    """A gdbm database opened read-only, without the C library.

    The header, the hash directory and every bucket header are validated when the
    file is opened; key/value pointers are checked as records are read.
    Iterating yields ``(key, value)`` bytes pairs in the same order as
    ``gdbm_firstkey``/``gdbm_nextkey`` (directory order, then slot order).
    """

    def __init__(self, path, *, name=None):
        self.path = os.fspath(path)
        self.name = name if name is not None else str(self.path)
        self._count = None
        self._buf = None
        self._bytes = None
        with open(self.path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                raise FormatError(f"{self.name}: offset 0: empty file, not a gdbm database")
            _shared_lock(f, self.name)
            # read whole, or mapped with a shrink check per bucket; a mapping keeps a duplicate
            # of the descriptor, so the lock lasts until close()
            self._bytes = FileBytes(f, self.name)
            self._buf = self._bytes.data
        self._file_size = len(self._buf)
        try:
            self._parse_header()
            self._buckets = self._walk_directory()
        except BaseException:
            self.close()
            raise

    # -- opening ---------------------------------------------------------------

    def _err(self, offset: int, problem: str) -> FormatError:
        return FormatError(f"{self.name}: offset {offset}: {problem}")

    def _parse_header(self) -> None:
        buf, size = self._buf, self._file_size
        found = _magic_of(bytes(buf[:4]))
        if found is None:
            raise self._err(0, f"bad magic {bytes(buf[:4]).hex()}, not a gdbm database")
        magic, byteorder = found
        endian = "<" if byteorder == "little" else ">"
        layout, fields = _pick_layout(buf, magic, endian, size)
        if layout is None:
            raise self._err(0, f"bad {GDBM_MAGICS[magic]} header: {fields}")
        (_m, self.block_size, self.dir_offset, self.dir_size, self.dir_bits,
         self.bucket_size, self.bucket_elems, self.next_block) = fields
        self.magic = magic
        self.byte_order = byteorder
        self.numsync = None
        self.numsync_version = None
        if magic in (_NUMSYNC32, _NUMSYNC64):
            # extended header {int version; unsigned numsync; int pad[6]} follows
            ext = layout.header_len
            if self.block_size < ext + 32:
                raise self._err(ext, f"block size {self.block_size} too small for the numsync header")
            self.numsync_version, self.numsync = struct.unpack_from(endian + "iI", buf, ext)
        self._layout = layout
        self._endian = endian
        self._bucket_head = struct.Struct(endian + "ii")
        self._elem = struct.Struct(endian + layout.elem_fmt)
        # one Struct for a whole bucket table is the fast path; its format string
        # grows with bucket_elems, so very large buckets go element by element
        self._table = None
        if self.bucket_elems <= 1 << 16:
            self._table = struct.Struct(endian + layout.elem_fmt * self.bucket_elems)

    def _dir_entries(self):
        """Yield the directory's bucket offsets, unpacking 64 Ki entries at a time (bounded memory)."""
        lay, buf = self._layout, self._buf
        n = self.dir_size // lay.off_size  # a power of two
        step = min(n, 1 << 16)
        st = struct.Struct(f"{self._endian}{step}{lay.off_code}")
        for base in range(0, n, step):
            yield from st.unpack_from(buf, self.dir_offset + base * lay.off_size)

    def _walk_directory(self) -> list:
        """Validate the directory and each bucket header once; return [(offset, bits, count, first index)].

        In extendible hashing a bucket with ``bits`` bits is referenced by one
        aligned run of ``2 ** (dir_bits - bits)`` directory entries, so a run of
        the wrong length, a bucket seen twice (an offset loop) or a bucket in the
        header block means the file is damaged.
        """
        lay, buf = self._layout, self._buf
        buckets = []
        seen = set()
        lo, hi = self.block_size, self._file_size - self.bucket_size
        bits_at = lay.bucket_bits_at
        dir_bits = self.dir_bits
        start, off = 0, None

        def end_run(off, start, stop):
            bits, count = self._bucket_head.unpack_from(buf, off + bits_at)
            run = stop - start
            if not 0 <= bits <= dir_bits or run != 1 << (dir_bits - bits) or start % run:
                raise self._err(off + bits_at, f"bucket with {bits} bits is referenced by directory entries "
                                               f"{start}..{stop - 1} (directory has {dir_bits} bits)")
            if not 0 <= count <= self.bucket_elems:
                raise self._err(off + bits_at + 4, f"bucket count {count} out of range 0..{self.bucket_elems}")
            buckets.append((off, bits, count, start))

        for i, entry in enumerate(self._dir_entries()):
            if entry == off:
                continue
            if off is not None:
                end_run(off, start, i)
            where = self.dir_offset + i * lay.off_size
            if not lo <= entry <= hi:
                raise self._err(where, f"directory entry {i} points to {entry}, outside [{lo}, {hi}] "
                                       f"(bucket size {self.bucket_size})")
            if entry in seen:
                raise self._err(where, f"directory entry {i} points again to bucket {entry} (loop)")
            seen.add(entry)
            start, off = i, entry
        end_run(off, start, self.dir_size // lay.off_size)
        return buckets

    def _slots(self, buf, off: int) -> tuple:
        """A bucket's element table as a flat tuple (hash, pointer, key size, value size, hash, ...)."""
        if self._table is not None:
            return self._table.unpack_from(buf, off + self._layout.table_at)
        # a huge bucket (never made by gdbm's defaults): unpack element by element
        start = off + self._layout.table_at
        raw = buf[start:start + self.bucket_elems * self._layout.elem_size]
        return tuple(x for t in self._elem.iter_unpack(raw) for x in t)

    # -- reading ---------------------------------------------------------------

    def items(self):
        """Yield every record once as ``(key bytes, value bytes)``, in gdbm's own scan order."""
        buf, size = self._buf, self._file_size
        if buf is None:
            raise ValueError("I/O operation on closed gdbm file")
        slots = self._slots
        lo = self.block_size
        dir_bits = self.dir_bits
        check = self._bytes.check if self._bytes.mapped else None
        for off, bits, count, first in self._buckets:
            if check is not None:
                check()
            vals = slots(buf, off)
            # every hash in this bucket starts with the bucket's bit prefix
            shift = _HASH_BITS - bits
            prefix = first >> (dir_bits - bits)
            it = iter(vals)
            found = 0
            for h, p, ks, ds in zip(it, it, it, it):
                if h == -1:
                    continue  # empty slot (never used, or deleted)
                end = p + ks + ds
                if h < 0 or h >> shift != prefix or ks < 0 or ds < 0 or p < lo or end > size:
                    raise self._bad_element(off, vals, found, h, p, ks, ds, prefix, shift)
                found += 1
                kend = p + ks
                yield buf[p:kend], buf[kend:end]
            if found != count:
                raise self._err(off, f"bucket says {count} records but holds {found}")

    __iter__ = items

    def _bad_element(self, off, vals, found, h, p, ks, ds, prefix, shift) -> FormatError:
        slot = 0
        for slot in range(len(vals) // 4):
            if vals[4 * slot: 4 * slot + 4] == (h, p, ks, ds):
                break
        where = off + self._layout.table_at + slot * self._layout.elem_size
        if h < 0:
            why = f"bad hash value {h}"
        elif h >> shift != prefix:
            why = f"hash value {h:#x} does not belong in this bucket"
        elif ks < 0 or ds < 0:
            why = f"negative key/value size {ks}/{ds}"
        else:
            why = (f"record [{p}, {p + ks + ds}) (key {ks} + value {ds} bytes) "
                   f"is outside the data area [{self.block_size}, {self._file_size})")
        return self._err(where, f"bucket at {off}, slot {slot}: {why}")

    def _count_records(self) -> int:
        if self._count is None:
            buf = self._buf
            if buf is None:
                raise ValueError("I/O operation on closed gdbm file")
            total = 0
            for off, _bits, count, _first in self._buckets:
                used = self._slots(buf, off)[0::4]
                n = len(used) - used.count(-1)
                if n != count:
                    raise self._err(off, f"bucket says {count} records but holds {n}")
                total += n
            self._count = total
        return self._count

    def __len__(self) -> int:
        return self._count_records()

    def info(self) -> dict:
        """Header facts and the exact record count (counted from bucket slots)."""
        numsync = self.magic in (_NUMSYNC32, _NUMSYNC64)
        d = {
            "flavour": "numsync" if numsync else "standard",
            "magic": f"{self.magic:#010x}",
            "byte_order": self.byte_order,
            "offset_size": self._layout.off_size,
            "offset_alignment": self._layout.align,
            "block_size": self.block_size,
            "dir_offset": self.dir_offset,
            "dir_size": self.dir_size,
            "dir_bits": self.dir_bits,
            "bucket_size": self.bucket_size,
            "bucket_elems": self.bucket_elems,
            "bucket_count": len(self._buckets),
            "next_block": self.next_block,
            "file_size": self._file_size,
            "record_count": self._count_records(),
        }
        if numsync:
            d["numsync"] = self.numsync
            d["numsync_version"] = self.numsync_version
        return d

    def close(self) -> None:
        """Release the mapping.  Records already returned stay valid (they are copies)."""
        self._buf = None
        if self._bytes is not None:
            self._bytes.close()
            self._bytes = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()




# -- dumps ---------------------------------------------------------------------

_B64_LINE = 76  # gdbm's _GDBM_MAX_DUMP_LINE_LEN


def read_dump(path_or_file, *, name=""):
    """Yield ``(key, value)`` bytes pairs from a gdbm ASCII or binary dump (detected).

    ``path_or_file`` is a path or a binary file object.  The ASCII reader checks
    every ``#:len=`` against the decoded data and the ``#:count=`` trailer, so a
    truncated dump is a FormatError, not a short result.  The binary reader
    accepts the length word as 8 bytes (LP64, either byte order) or 4 bytes.
    """
    if isinstance(path_or_file, (str, bytes, os.PathLike)):
        name = name or os.fsdecode(path_or_file)
        with open(path_or_file, "rb") as f:
            yield from _read_dump_file(f, name)
    else:
        name = name or str(getattr(path_or_file, "name", "<dump>"))
        yield from _read_dump_file(path_or_file, name)


def _read_dump_file(f, name):
    first = f.read(1)
    if isinstance(first, str):
        raise TypeError(f"{name}: gdbm dumps must be read from a binary file object")
    if first == b"!":
        yield from _read_binary_dump(f, first, name)
    elif first == b"#":
        yield from _read_ascii_dump(f, first, name)
    elif first == b"":
        raise FormatError(f"{name}: offset 0: empty file, not a gdbm dump")
    else:
        raise FormatError(f"{name}: offset 0: not a gdbm dump (starts with {first!r})")


def _parse_params(text: bytes) -> dict:
    """'#:a=1,b="x,y"' -> {'a': '1', 'b': 'x,y'}, the way gdbm_load splits them."""
    out = {}
    s = text.decode("latin-1")
    i, n = 0, len(s)
    while i < n:
        while i < n and s[i] in " \t,":
            i += 1
        if i >= n:
            break
        j = s.find("=", i)
        if j < 0:
            raise ValueError(f"parameter without '=': {s[i:]!r}")
        key = s[i:j]
        i = j + 1
        if i < n and s[i] == '"':
            j = s.find('"', i + 1)
            j = n if j < 0 else j
            out[key] = s[i + 1:j]
            i = j + 1
        else:
            j = s.find(",", i)
            j = n if j < 0 else j
            out[key] = s[i:j]
            i = j
    return out


try:  # strict_mode (no stray characters, no data after padding) appeared in Python 3.11
    binascii.a2b_base64(b"", strict_mode=True)
    _STRICT_B64 = True
except TypeError:
    _STRICT_B64 = False


def _b64decode(raw: bytes) -> bytes:
    if _STRICT_B64:
        return binascii.a2b_base64(raw, strict_mode=True)
    return base64.b64decode(raw, validate=True)


def _read_ascii_dump(f, first, name):
    """The format of gdbmdump.c: '#' header lines, then per datum '#:len=N' and base64 lines."""
    lineno = 0
    want = None  # declared length of the datum being collected
    chunks = []
    got = 0  # base64 characters collected for it
    pending_key = None
    records = 0
    count = None
    ended = False
    header = True

    def finish():
        raw = b"".join(chunks)
        try:
            data = _b64decode(raw)
        except (binascii.Error, ValueError) as e:
            raise FormatError(f"{name}: line {lineno}: bad base64 data ({e})") from None
        if len(data) != want:
            raise FormatError(f"{name}: line {lineno}: #:len={want} but the data decodes to {len(data)} bytes")
        return data

    for line in _lines(f, first):
        lineno += 1
        line = line.rstrip(b"\r\n")
        if ended:
            if line.strip():
                raise FormatError(f"{name}: line {lineno}: data after '# End of data'")
            continue
        if not line.startswith(b"#"):
            if not line:
                continue  # blank lines carry nothing (our writer puts one after '#:len=0')
            if want is None:
                raise FormatError(f"{name}: line {lineno}: data line without a '#:len=' before it")
            got += len(line)
            if got > 4 * (want // 3 + 1) + 4:
                raise FormatError(f"{name}: line {lineno}: more data than #:len={want}")
            chunks.append(line)
            continue
        # a '#' line ends the datum being collected
        if want is not None:
            datum = finish()
            want, chunks, got = None, [], 0
            if pending_key is None:
                pending_key = datum
            else:
                records += 1
                yield pending_key, datum
                pending_key = None
        if line.startswith(b"#:"):
            try:
                params = _parse_params(line[2:])
            except ValueError as e:
                if header:  # e.g. gdbm_dump's unquoted '#:file=' of a name with a comma
                    continue
                raise FormatError(f"{name}: line {lineno}: {e}") from None
            if "len" in params:
                header = False
                if count is not None:
                    raise FormatError(f"{name}: line {lineno}: record after the '#:count=' trailer")
                try:
                    want = int(params["len"], 10)
                except ValueError:
                    raise FormatError(f"{name}: line {lineno}: bad length {params['len']!r}") from None
                if want < 0:
                    raise FormatError(f"{name}: line {lineno}: bad length {want}")
            elif "count" in params:
                try:
                    count = int(params["count"], 10)
                except ValueError:
                    raise FormatError(f"{name}: line {lineno}: bad count {params['count']!r}") from None
            elif not header:
                raise FormatError(f"{name}: line {lineno}: unexpected parameter line {line[:40]!r}")
        elif line.strip() == b"# End of data":
            ended = True
    if want is not None:
        datum = finish()
        if pending_key is None:
            pending_key = datum
        else:
            records += 1
            yield pending_key, datum
            pending_key = None
    if pending_key is not None:
        raise FormatError(f"{name}: line {lineno}: key without a value at the end (truncated dump)")
    if count is None:
        raise FormatError(f"{name}: line {lineno}: no '#:count=' trailer (truncated dump?)")
    if count != records:
        raise FormatError(f"{name}: trailer says #:count={count} but the dump holds {records} records")


def _lines(f, first):
    rest = f.readline()
    yield first + rest
    yield from f


_BIN_LAYOUTS = (
    # (name, length word size, where the big-endian 32-bit length sits in the word)
    ("8le", 8, 0),  # LP64 little-endian host: htonl(n) in an unsigned long
    ("8be", 8, 4),  # LP64 big-endian host
    ("4", 4, 0),  # ILP32 host
)


def _read_binary_dump(f, first, name):
    """gdbmexp.c's flat file: 4 text lines starting with '!', then [len][key][len][value]..."""
    pre = first
    for n in range(4):
        line = f.readline(4096)
        if not line.endswith(b"\n"):
            raise FormatError(f"{name}: offset {len(pre)}: truncated or overlong binary dump preamble")
        if n and not line.startswith(b"!"):
            raise FormatError(f"{name}: offset {len(pre)}: binary dump preamble line does not start with '!'")
        pre += line
    if not pre.startswith(_BIN_PREAMBLE[:24]):
        raise FormatError(f"{name}: offset 0: not a gdbm binary dump")
    start = len(pre)
    head = b""
    layout = _binary_layout_by_walk(f, start)
    if layout is None:  # a pipe: the first length word decides
        head = f.read(8)
        layout = _binary_layout_by_word(head)
    _, wsize, at = next(l for l in _BIN_LAYOUTS if l[0] == layout)
    pending = [head]

    def read(n):
        if pending:
            buf = pending.pop()
            if len(buf) < n:
                buf += f.read(n - len(buf))
            elif len(buf) > n:
                pending.append(buf[n:])
                buf = buf[:n]
            return buf
        return f.read(n)

    pos = start
    while True:
        word = read(wsize)
        if not word:
            return
        n = _bin_len(word, wsize, at, name, pos)
        key = read(n)
        if len(key) != n:
            raise FormatError(f"{name}: offset {pos}: key of {n} bytes truncated")
        pos += wsize + n
        word = read(wsize)
        if not word:
            raise FormatError(f"{name}: offset {pos}: key without a value (truncated dump)")
        n = _bin_len(word, wsize, at, name, pos)
        value = read(n)
        if len(value) != n:
            raise FormatError(f"{name}: offset {pos}: value of {n} bytes truncated")
        pos += wsize + n
        yield key, value


def _bin_len(word, wsize, at, name, pos) -> int:
    if len(word) != wsize:
        raise FormatError(f"{name}: offset {pos}: truncated length word")
    if wsize == 8 and word[4 - at: 8 - at] != b"\0\0\0\0":
        raise FormatError(f"{name}: offset {pos}: bad length word {word.hex()}")
    n = int.from_bytes(word[at:at + 4], "big")
    if n > 0x7FFFFFFF:
        raise FormatError(f"{name}: offset {pos}: length {n} too large")
    return n


def _binary_layout_by_word(word: bytes) -> str:
    """Guess the layout from the first length word (used only when the input cannot seek)."""
    if len(word) >= 8 and word[:4] == b"\0\0\0\0":
        return "8be"
    if len(word) >= 8 and word[4:8] != b"\0\0\0\0":
        return "4"
    return "8le"


def _binary_layout_by_walk(f, start):
    """On a seekable input: the layout whose records end exactly at the end of the data.

    Every candidate is walked (a wrong one fails within a few records).  None if
    the input cannot seek.  If no layout fits, the dump is truncated or damaged;
    the most plausible layout is returned so the reader reports where.
    """
    try:
        if not f.seekable():
            return None
        end = f.seek(0, 2)
    except (AttributeError, OSError, ValueError):
        return None
    fits = [lname for lname, wsize, at in _BIN_LAYOUTS if _walk_binary(f, start, end, wsize, at)]
    f.seek(start)
    word = f.read(8)
    f.seek(start)
    return fits[0] if fits else _binary_layout_by_word(word)


def _walk_binary(f, pos, end, wsize, at) -> bool:
    items = 0
    while pos < end:
        if pos + wsize > end:
            return False
        f.seek(pos)
        word = f.read(wsize)
        if wsize == 8 and word[4 - at: 8 - at] != b"\0\0\0\0":
            return False
        pos += wsize + int.from_bytes(word[at:at + 4], "big")
        items += 1
    return pos == end and items % 2 == 0


def _as_bytes(x, what: str) -> bytes:
    if isinstance(x, bytes):
        return x
    if isinstance(x, (bytearray, memoryview)):
        return bytes(x)
    raise UnsupportedValueError(f"gdbm dump: {what} must be bytes, not {type(x).__name__}")


def _safe_param(value: str) -> str:
    # gdbm_load splits parameters at ',' unless quoted, and cannot quote '"'
    value = "".join("_" if c in '"\r\n' else c for c in value) or "converted"
    return f'"{value}"' if "," in value or " " in value else value


def write_ascii_dump(file, items, *, name="converted") -> int:
    """Write ``items`` ((key, value) bytes pairs) as a gdbm ASCII dump; return the record count.

    ``file`` is a binary file object.  gdbm_load 1.23 takes empty keys and values
    only when (a) a blank line follows their ``#:len=0`` (its parameter reader
    otherwise swallows the next ``#:len`` line) and (b) a record with a non-empty
    key *and* value was loaded before (it hands a NULL pointer to gdbm_store for
    the first empty datum).  So records holding an empty key or value are held back
    until such a record has been written (they stay in memory until then; with
    empty values that is mostly their keys); if there is none, UnsupportedValueError.
    Records are otherwise written in the order given.
    """
    w = file.write
    w(b"# GDBM dump file created by converter-toolkit\n#:version=1.1\n")
    # gdbm_load creates '#:file=' when given no database name: keep it to a bare name
    w(f"#:file={_safe_param(os.path.basename(name))}\n".encode("utf-8", "replace"))
    w(b"#:format=standard\n# End of header\n")
    count = 0
    held = []  # records with an empty key or value, before the first full one
    anchored = False
    for key, value in items:
        key = _as_bytes(key, "key")
        value = _as_bytes(value, "value")
        if not anchored:
            if not key or not value:
                held.append((key, value))
                continue
            anchored = True
            _ascii_datum(w, key)
            _ascii_datum(w, value)
            count += 1
            for k, v in held:
                _ascii_datum(w, k)
                _ascii_datum(w, v)
                count += 1
            held = []
            continue
        _ascii_datum(w, key)
        _ascii_datum(w, value)
        count += 1
    if held:
        raise UnsupportedValueError(
            "gdbm ASCII dump: gdbm_load 1.23 cannot load an empty key or value unless some record "
            "has both a non-empty key and a non-empty value; this data has none")
    w(f"#:count={count}\n# End of data\n".encode())
    return count


def _ascii_datum(w, data: bytes) -> None:
    n = len(data)
    if n > 0x7FFFFFFF:
        raise UnsupportedValueError(f"gdbm dump: datum of {n} bytes is larger than gdbm's 2 GiB limit")
    if n == 0:
        w(b"#:len=0\n\n")
        return
    enc = base64.b64encode(data)
    parts = [b"#:len=%d\n" % n]
    for i in range(0, len(enc), _B64_LINE):
        parts.append(enc[i:i + _B64_LINE])
        parts.append(b"\n")
    w(b"".join(parts))


def write_binary_dump(file, items, *, long_size=8, byteorder="little") -> int:
    """Write ``items`` as a gdbm binary (flat file) dump, as ``gdbm_dump -H binary`` does; return the count.

    The length word is a C ``unsigned long`` holding ``htonl(n)``, so the file is
    only portable between hosts of the same word size and byte order; the
    defaults match x86-64 Linux.  gdbm cannot write or load an empty key or value
    in this format (fwrite/fread of 0 items fails), so those are
    UnsupportedValueError: use the ASCII dump for them.
    """
    if long_size not in (4, 8) or byteorder not in ("little", "big"):
        raise ValueError("long_size must be 4 or 8 and byteorder 'little' or 'big'")
    pad = b"\0" * (long_size - 4)
    w = file.write
    w(_BIN_PREAMBLE + b"converter-toolkit\r\n!\r\n")
    count = 0
    for key, value in items:
        for what, d in (("key", key), ("value", value)):
            d = _as_bytes(d, what)
            if not d:
                raise UnsupportedValueError(
                    f"gdbm binary dump: record {count}: empty {what}; gdbm_load cannot read an empty "
                    "datum from a binary dump (use the ASCII dump)")
            if len(d) > 0x7FFFFFFF:
                raise UnsupportedValueError(f"gdbm binary dump: record {count}: {what} larger than 2 GiB")
            n = len(d).to_bytes(4, "big")
            w((n + pad if byteorder == "little" else pad + n) + d)
        count += 1
    return count



# -- the gdbm-dump format's reader, writer and identify facts (registered in gdbm.py) ------------

def read_dump_format(path, options):
    from converter.fileio import open_input

    with open_input(path) as f:
        yield from read_dump(f, name=str(path))


def write_dump_format(path, records, options):
    from converter.fileio import open_output

    with open_output(path) as f:
        write_ascii_dump(f, records, name=os.path.basename(str(path)))


def describe(path, options) -> dict:
    """Facts for ``convert identify`` about a gdbm file."""
    with GdbmFile(path) as db:
        info = db.info()
    return {k: info[k] for k in ("flavour", "magic", "byte_order", "offset_size", "block_size",
                                  "bucket_count", "record_count", "numsync") if k in info}
