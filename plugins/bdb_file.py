"""Berkeley DB: a pure-Python, read-only, streaming reader (hash and btree), recognised and
registered in bdb.py (the db_dump text format is in bdb_dump.py).

Nothing here links against libdb: the page layout is read with ``struct`` from the file read whole or memory-mapped (``converter.fileio.FileBytes``)
(facts from Oracle Berkeley DB's ``db_page.h``, ``hash.h`` and ``db_upgrade.h``; see
/work/shared/FORMATS.md). What is read:

* hash databases, versions 4-10 (Berkeley DB 2.x through 18.1; Python 2's ``bsddb`` and
  Debian's ``dbm.ndbm`` ``NAME.db`` files), unsorted (type 2, before 4.6) and sorted
  (type 13) hash pages;
* Berkeley DB 1.85 hash files (old BSD libc ``dbopen``, macOS ``ndbm``), a different
  layout with "big pairs" spread over overflow pages (see ``_open185``);
* btree databases, versions 6-10: the walk goes from the root down to the leftmost leaf,
  then along the leaf ``next`` chain, so records come out in key order;
* either byte order (a database created with ``set_lorder(4321)`` swaps every field),
  checksummed pages (the checksum is skipped, not verified: verifying it would mean
  hashing every byte in Python; the structure is validated instead), overflow (off-page)
  keys and values, on-page and off-page duplicates, and files holding several named
  databases (``databases()``, ``database=``).

Duplicates: a key stored with several values is yielded once per value, in the stored
order (insertion order for unsorted duplicates, sorted order for ``DB_DUPSORT``), so a
consumer that builds a dict keeps only the last value.

Encrypted databases, queue, recno and heap databases, compressed btrees and version 10
external "blob" items are recognised and refused with a FormatError. Every structural
problem (a page number past the end of the file, an item offset outside its page, an
overflow chain shorter or longer than its recorded length, a page chain that loops) raises
FormatError naming the file and the page; nothing is allocated from a length field before
it has been checked against the file size.
"""

from __future__ import annotations

import os
import struct
from typing import Iterator

from converter.errors import ChoiceNeededError, FormatError
from converter.fileio import FileBytes
from converter.plugins.bdb import (  # magic numbers, page types, meta-page layouts
    BTM_COMPRESS,
    BTM_DUP,
    BTM_RECNO,
    BTM_SUBDB,
    BTREE_MAGIC,
    B_BLOB,
    B_DELETE,
    B_DUPLICATE,
    B_KEYDATA,
    B_OVERFLOW,
    DBMETA_CHKSUM,
    DB_HASH_DUP,
    HASH_MAGIC,
    H_BLOB,
    H_DUPLICATE,
    H_KEYDATA,
    H_OFFDUP,
    H_OFFPAGE,
    P_BTREEMETA,
    P_DUPLICATE,
    P_HASH,
    P_HASHMETA,
    P_HASH_UNSORTED,
    P_IBTREE,
    P_INVALID,
    P_IRECNO,
    P_LBTREE,
    P_LDUP,
    P_LRECNO,
    P_OVERFLOW,
    _BTREE_RANGES,
    _CHKSUM_HEADER,
    _HASH_RANGES,
    _KINDS,
    _MAX_LEVELS,
    _PAGE_HEADER,
    _ceil_log2,
    _meta_layout,
    _read_meta_head,
)

__all__ = ["BerkeleyDB"]


class _Tree:
    """One database inside a file: its meta page decoded."""

    __slots__ = ("kind", "version", "meta_pgno", "flags", "root", "max_bucket", "spares",
                 "nelem")


class BerkeleyDB:
    """A read-only view of a Berkeley DB hash or btree file.

    ``database`` picks a named database in a file that holds several (see ``databases()``);
    with ``database=None`` a file holding exactly one named database reads that one, and a
    file holding several raises FormatError when records are asked for. ``name`` is the
    name used in error messages (default: the path).

    Iterating yields ``(key, value)`` bytes pairs; duplicates yield the same key once per
    value. The file is memory-mapped; ``close()`` (or the context manager) releases it.
    """

    def __init__(self, path, *, database=None, name=None):
        self.path = os.fspath(path)
        self.name = name if name is not None else str(self.path)
        self._mm = None
        self._len = None
        self._bytes = None
        with open(self.path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size == 0:
                raise FormatError(f"{self.name}: empty file, not a Berkeley DB database")
            self._bytes = FileBytes(fh, self.name)  # read whole, or mapped with a shrink check per page
            self._mm = self._bytes.data
            self._check = self._bytes.check if self._bytes.mapped else None
        try:
            self._open(size, database)
        except BaseException:
            self.close()
            raise

    # -- opening -------------------------------------------------------------------------

    def _err(self, msg: str) -> FormatError:
        return FormatError(f"{self.name}: {msg}")

    def _open(self, size: int, database) -> None:
        mm = self._mm
        head = mm[:512]
        if len(head) >= 8 and struct.unpack_from(">II", head, 0) in ((HASH_MAGIC, 1), (HASH_MAGIC, 2)):
            return self._open185(size, database)
        if len(head) >= 8 and BTREE_MAGIC in (struct.unpack_from("<I", head, 0)[0],
                                              struct.unpack_from(">I", head, 0)[0]):
            raise self._err("Berkeley DB 1.85 btree files are not supported")
        got = _read_meta_head(head)
        if got is None:
            raise self._err("not a Berkeley DB database (no hash or btree magic at offset 12)")
        magic, version, bo, pagesize = got
        kind, ranges = _KINDS[magic]
        if kind in ("queue", "heap"):
            raise self._err(f"Berkeley DB {kind} databases are not supported")
        if version not in ranges:
            raise self._err(f"unsupported Berkeley DB {kind} version {version}")
        if pagesize < 256 or pagesize > 65536 or pagesize & (pagesize - 1):
            raise self._err(f"meta page gives an impossible page size {pagesize}")
        if size < pagesize:
            raise self._err(f"truncated: {size} bytes, shorter than one {pagesize}-byte page")
        self.bo = bo
        self.page_size = ps = pagesize
        self.npages = size // ps
        modern = (kind == "hash" and version >= 8) or (kind == "btree" and version >= 9)
        self.encrypted = bool(modern and head[24])
        self.checksums = bool(modern and head[26] & DBMETA_CHKSUM)
        if self.encrypted:
            raise self._err("encrypted Berkeley DB database; decrypt it with db_dump -P first")
        self.hdr = _CHKSUM_HEADER if self.checksums else _PAGE_HEADER
        if modern:
            last_pgno = struct.unpack_from(bo + "I", head, 32)[0]
            if last_pgno >= self.npages:
                raise self._err(
                    f"truncated: the meta page says the last page is {last_pgno}, "
                    f"the file holds {self.npages} pages of {ps} bytes")
        self._u32 = struct.Struct(bo + "I").unpack_from
        self._hdr = struct.Struct(bo + "IIIHHBB").unpack_from
        self._bk = struct.Struct(bo + "HB").unpack_from          # BKEYDATA len, type
        self._pg_tlen = struct.Struct(bo + "II").unpack_from     # pgno, tlen
        self._h16 = struct.Struct(bo + "H").unpack_from
        self._inp_cache = {}
        top = self._meta(0, )
        self._subdbs = {}
        if top.kind == "btree" and top.flags & BTM_SUBDB:
            for key, value in self._btree_items(top, bytearray(self.npages)):
                if len(value) != 4:
                    raise self._err(f"master database entry {key!r} is not a page number")
                # The master database stores page numbers in network byte order.
                self._subdbs[key] = struct.unpack(">I", value)[0]
        self._top = top
        self._tree = None
        if database is not None:
            if not self._subdbs:
                raise self._err("holds a single unnamed database; there is nothing to pick "
                                f"with database={database!r}")
            key = database.encode("utf-8", "surrogateescape") if isinstance(database, str) else bytes(database)
            if key not in self._subdbs:
                raise self._err(f"no database named {database!r}; it holds {self.databases()}")
            self._tree = self._meta(self._subdbs[key], )
        elif not self._subdbs:
            self._tree = top
        elif len(self._subdbs) == 1:
            self._tree = self._meta(next(iter(self._subdbs.values())), )

    def _meta(self, pgno: int) -> _Tree:
        """Decode the meta page at pgno (page 0 or a named database's meta page)."""
        page = self._page(pgno, "meta page")
        got = _read_meta_head(page)
        if got is None or got[2] != self.bo:
            raise self._err(f"page {pgno}: not a Berkeley DB meta page")
        magic, version, _, pagesize = got
        kind = _KINDS[magic][0]
        if kind not in ("hash", "btree"):
            raise self._err(f"page {pgno}: Berkeley DB {kind} databases are not supported")
        if pagesize != self.page_size:
            raise self._err(f"page {pgno}: meta page gives page size {pagesize}, "
                            f"page 0 gives {self.page_size}")
        if version not in (_HASH_RANGES if kind == "hash" else _BTREE_RANGES):
            raise self._err(f"page {pgno}: unsupported Berkeley DB {kind} version {version}")
        typed = version >= (6 if kind == "hash" else 7)   # 2.x meta pages had no type byte
        if typed and page[25] != (P_HASHMETA if kind == "hash" else P_BTREEMETA):
            raise self._err(f"page {pgno}: meta page has page type {page[25]}")
        u32 = self._u32
        t = _Tree()
        t.kind, t.version, t.meta_pgno = kind, version, pgno
        flags_at, first = _meta_layout(kind, version)
        t.flags = u32(page, flags_at)[0]
        t.root = t.max_bucket = t.spares = t.nelem = None
        if kind == "btree":
            if t.flags & BTM_RECNO:
                raise self._err(f"page {pgno}: Berkeley DB recno databases are not supported")
            if t.flags & BTM_COMPRESS:
                raise self._err(f"page {pgno}: compressed btree databases are not supported")
            t.root = u32(page, first)[0] if first is not None else 1
            self._check_pgno(t.root, f"the root page of the btree at page {pgno}")
        else:
            t.max_bucket = u32(page, first)[0]
            t.nelem = u32(page, first + 16)[0]
            # spares follow h_charkey, except in 2.x where the flags word sits between.
            spares_at = first + (24 if version >= 6 else 28)
            spares = list(struct.unpack_from(self.bo + "32I", page, spares_at))
            if version < 6:
                # 2.x counted the overflow pages allocated before each doubling; 3.0 changed
                # to "first page of the doubling minus its first bucket" (__ham_30_hashmeta).
                spares = [1] + [1 + s for s in spares[:31]]
            t.spares = spares
            # Every bucket's page must lie in the file: check the last bucket now, so a
            # huge max_bucket fails at once rather than after a long walk.
            if t.max_bucket >= self.npages:
                raise self._err(f"page {pgno}: max_bucket {t.max_bucket} is past the end of "
                                f"the file ({self.npages} pages)")
        return t

    # -- page access -----------------------------------------------------------------------

    def _check_pgno(self, pgno: int, what: str) -> None:
        if not 0 < pgno < self.npages:
            raise self._err(f"{what} is page {pgno}, outside the file ({self.npages} pages)")

    def _page(self, pgno: int, what: str) -> bytes:
        if not 0 <= pgno < self.npages:
            raise self._err(f"{what}: page {pgno} is outside the file ({self.npages} pages "
                            f"of {self.page_size} bytes); the file is truncated or damaged")
        ps = self.page_size
        if self._check is not None:
            self._check()
        return self._mm[pgno * ps:(pgno + 1) * ps]

    def _index(self, page: bytes, pgno: int, n: int, pairs: bool):
        """The item offset array of a page, checked to lie inside the page."""
        if pairs and n & 1:
            raise self._err(f"page {pgno}: odd number of entries ({n}) on a key/value page")
        lo = self.hdr + 2 * n
        if lo > self.page_size:
            raise self._err(f"page {pgno}: {n} entries cannot fit in a {self.page_size}-byte page")
        fmt = self._inp_cache.get(n)
        if fmt is None:
            fmt = self._inp_cache[n] = struct.Struct("%s%dH" % (self.bo, n)).unpack_from
        inp = fmt(page, self.hdr)
        if n and (min(inp) < lo or max(inp) >= self.page_size):
            raise self._err(f"page {pgno}: an item offset points outside the page")
        return inp

    def _overflow(self, pgno: int, tlen: int, where: int) -> bytes:
        """Join the overflow chain starting at pgno, which must hold exactly tlen bytes."""
        room = self.page_size - self.hdr
        if tlen > self.npages * room:
            raise self._err(f"page {where}: overflow item of {tlen} bytes is larger than the file")
        parts, got, seen = [], 0, set()
        hdr = self.hdr
        while pgno:
            if pgno in seen:
                raise self._err(f"page chain loops at page {pgno} (overflow item from page {where})")
            seen.add(pgno)
            page = self._page(pgno, f"overflow item from page {where}")
            _, _, nxt, _, ln, _, ptype = self._hdr(page, 8)
            if ptype != P_OVERFLOW:
                raise self._err(f"page {pgno}: expected an overflow page (item from page {where}), "
                                f"found page type {ptype}")
            if ln > room:
                raise self._err(f"page {pgno}: overflow page claims {ln} bytes")
            got += ln
            if got > tlen:
                raise self._err(f"page {pgno}: overflow chain from page {where} is longer than "
                                f"its recorded length {tlen}")
            parts.append(page[hdr:hdr + ln])
            pgno = nxt
        if got != tlen:
            raise self._err(f"page {where}: overflow chain holds {got} bytes, expected {tlen}")
        return b"".join(parts)

    # -- btree -------------------------------------------------------------------------------

    def _descend(self, pgno: int, seen: bytearray, leaf_types, what: str):
        """Follow the leftmost child pointers down to a leaf; return (pgno, page, type)."""
        level = None
        for _ in range(_MAX_LEVELS + 1):
            if not 0 < pgno < self.npages:
                raise self._err(f"{what}: page {pgno} is outside the file ({self.npages} pages)")
            if seen[pgno]:
                raise self._err(f"page chain loops at page {pgno}")
            seen[pgno] = 1
            page = self._page(pgno, what)
            _, _, _, n, _, lvl, ptype = self._hdr(page, 8)
            if level is not None and lvl != level - 1:
                raise self._err(f"page {pgno}: btree level {lvl} under a level-{level} page")
            level = lvl
            if ptype in leaf_types:
                return pgno, page, ptype
            if ptype not in (P_IBTREE, P_IRECNO) or n == 0:
                raise self._err(f"page {pgno}: expected a btree page in {what}, found page type "
                                f"{ptype} with {n} entries")
            off = self._index(page, pgno, 1, False)[0]
            # BINTERNAL {len, type, pad, pgno, nrecs, key}; RINTERNAL {pgno, nrecs}.
            at = off + 4 if ptype == P_IBTREE else off
            if at + 4 > self.page_size:
                raise self._err(f"page {pgno}: internal item runs off the page")
            pgno = self._u32(page, at)[0]
        raise self._err(f"{what}: more than {_MAX_LEVELS} btree levels")

    def _leaves(self, pgno: int, seen: bytearray, leaf_types, what: str):
        """Yield (pgno, page) along a leaf chain starting at the leftmost leaf."""
        pgno, page, ltype = self._descend(pgno, seen, leaf_types, what)
        hdr = self._hdr
        while True:
            yield pgno, page
            nxt = hdr(page, 8)[2]
            if not nxt:
                return
            if not 0 < nxt < self.npages:
                raise self._err(f"page {pgno}: next page {nxt} is outside the file "
                                f"({self.npages} pages)")
            if seen[nxt]:
                raise self._err(f"page chain loops at page {nxt}")
            seen[nxt] = 1
            page = self._page(nxt, what)
            ptype = page[25]
            if ptype != ltype:
                raise self._err(f"page {nxt}: expected page type {ltype} in {what}, found {ptype}")
            pgno = nxt

    def _btree_items(self, tree: _Tree, seen: bytearray) -> Iterator[tuple[bytes, bytes]]:
        bk, pg_tlen, ps = self._bk, self._pg_tlen, self.page_size
        index = self._index
        for pgno, page in self._leaves(tree.root, seen, (P_LBTREE,), "btree"):
            n = self._hdr(page, 8)[3]
            inp = index(page, pgno, n, True)
            koff_prev, key = -1, b""
            for i in range(0, n, 2):
                koff, doff = inp[i], inp[i + 1]
                if koff + 3 > ps or doff + 3 > ps:
                    raise self._err(f"page {pgno}: item header runs off the page")
                kln, kt = bk(page, koff)
                dln, dt = bk(page, doff)
                if (kt | dt) & B_DELETE:
                    continue
                if koff != koff_prev:         # on-page duplicates share one key item
                    if kt == B_KEYDATA:
                        if koff + 3 + kln > ps:
                            raise self._err(f"page {pgno}: key item runs off the page")
                        key = page[koff + 3:koff + 3 + kln]
                    else:
                        key = self._bitem(page, pgno, koff, kt)
                    koff_prev = koff
                if dt == B_KEYDATA:
                    if doff + 3 + dln > ps:
                        raise self._err(f"page {pgno}: data item runs off the page")
                    yield key, page[doff + 3:doff + 3 + dln]
                elif dt == B_DUPLICATE:
                    if doff + 12 > ps:
                        raise self._err(f"page {pgno}: item runs off the page")
                    root = pg_tlen(page, doff + 4)[0]
                    for value in self._dups(root, seen, pgno):
                        yield key, value
                else:
                    yield key, self._bitem(page, pgno, doff, dt)

    def _bitem(self, page: bytes, pgno: int, off: int, t: int) -> bytes:
        """A btree item that is not B_KEYDATA: an overflow reference, or unsupported."""
        if t == B_OVERFLOW:
            if off + 12 > self.page_size:
                raise self._err(f"page {pgno}: overflow reference runs off the page")
            opg, tlen = self._pg_tlen(page, off + 4)
            return self._overflow(opg, tlen, pgno)
        if t == B_BLOB:
            raise self._err(f"page {pgno}: external (blob) items are not supported")
        raise self._err(f"page {pgno}: unknown btree item type {t}")

    def _dups(self, root: int, seen: bytearray, where: int) -> Iterator[bytes]:
        """The values of an off-page duplicate tree (sorted: btree; unsorted: recno leaves;
        before 3.1: a plain chain of duplicate pages)."""
        bk, ps = self._bk, self.page_size
        what = f"duplicate tree from page {where}"
        for pgno, page in self._leaves(root, seen, (P_LDUP, P_LRECNO, P_DUPLICATE), what):
            n = self._hdr(page, 8)[3]
            for off in self._index(page, pgno, n, False):
                if off + 3 > ps:
                    raise self._err(f"page {pgno}: item header runs off the page")
                ln, t = bk(page, off)
                if t & B_DELETE:
                    continue
                if t == B_KEYDATA:
                    if off + 3 + ln > ps:
                        raise self._err(f"page {pgno}: data item runs off the page")
                    yield page[off + 3:off + 3 + ln]
                else:
                    yield self._bitem(page, pgno, off, t)

    # -- hash --------------------------------------------------------------------------------

    def _hash_items(self, tree: _Tree, seen: bytearray) -> Iterator[tuple[bytes, bytes]]:
        ps, npages, spares = self.page_size, self.npages, tree.spares
        hdr_of, index = self._hdr, self._index
        for bucket in range(tree.max_bucket + 1):
            pgno = bucket + spares[_ceil_log2(bucket + 1)]
            first = True
            while True:
                if not 0 < pgno < npages:
                    raise self._err(
                        f"bucket {bucket}: page {pgno} is outside the file ({npages} pages of "
                        f"{ps} bytes); the file is truncated or damaged")
                if seen[pgno]:
                    raise self._err(f"page chain loops at page {pgno}")
                seen[pgno] = 1
                page = self._page(pgno, f"bucket {bucket}")
                _, _, nxt, n, _, _, ptype = hdr_of(page, 8)
                if ptype != P_HASH and ptype != P_HASH_UNSORTED:
                    if first and ptype == P_INVALID and n == 0 and nxt == 0:
                        break     # a bucket page never written: a hole in the file, empty
                    raise self._err(f"page {pgno}: expected a hash page for bucket {bucket}, "
                                    f"found page type {ptype}")
                first = False
                inp = index(page, pgno, n, True)
                end = ps
                for i in range(0, n, 2):
                    koff, doff = inp[i], inp[i + 1]
                    # Items are packed from the end of the page in index order: an item
                    # ends where the previous one starts (LEN_HITEM).
                    if not doff < koff < end:
                        raise self._err(f"page {pgno}: hash items overlap or are out of order")
                    kt, dt = page[koff], page[doff]
                    if kt == H_KEYDATA:
                        key = page[koff + 1:end]
                    else:
                        key = self._hitem(page, pgno, koff, end, kt)
                    if dt == H_KEYDATA:
                        yield key, page[doff + 1:koff]
                    elif dt == H_DUPLICATE:
                        for value in self._hdups(page, pgno, doff + 1, koff):
                            yield key, value
                    elif dt == H_OFFDUP:
                        if doff + 8 > koff:
                            raise self._err(f"page {pgno}: item too short")
                        for value in self._dups(self._u32(page, doff + 4)[0], seen, pgno):
                            yield key, value
                    else:
                        yield key, self._hitem(page, pgno, doff, koff, dt)
                    end = doff
                if not nxt:
                    break
                pgno = nxt

    def _hitem(self, page: bytes, pgno: int, off: int, end: int, t: int) -> bytes:
        if t == H_OFFPAGE:
            if off + 12 > end:
                raise self._err(f"page {pgno}: overflow reference too short")
            opg, tlen = self._pg_tlen(page, off + 4)
            return self._overflow(opg, tlen, pgno)
        if t == H_BLOB:
            raise self._err(f"page {pgno}: external (blob) items are not supported")
        raise self._err(f"page {pgno}: unknown hash item type {t}")

    def _hdups(self, page: bytes, pgno: int, pos: int, end: int) -> Iterator[bytes]:
        """On-page duplicates: [len16][data][len16] repeated."""
        h16 = self._h16
        while pos < end:
            if pos + 2 > end:
                raise self._err(f"page {pgno}: duplicate set runs past its item")
            ln = h16(page, pos)[0]
            stop = pos + 2 + ln
            if stop + 2 > end or h16(page, stop)[0] != ln:
                raise self._err(f"page {pgno}: damaged on-page duplicate set")
            yield page[pos + 2:stop]
            pos = stop + 2

    # -- Berkeley DB 1.85 hash (old BSD libc, macOS ndbm) -------------------------------------
    #
    # Header at offset 0, always big-endian (hash.h HASHHDR): magic, version, lorder, bsize,
    # bshift, dsize, ssize, sshift, ovfl_point, last_freed, max_bucket, high_mask, low_mask,
    # ffactor, nkeys, hdrpages, h_charkey, spares[32], u16 bitmaps[32]. Pages are in `lorder`.
    # A page is a u16 table: p[0] = n, p[1..n] offsets (key, data pairs), p[n+1] free
    # space, p[n+2] free offset; items are packed from the end of the page. A pair whose
    # second word is < 4 is a marker: 0 = the next overflow page (address in the first word),
    # 1/2/3 = the page starts a "big" pair spread over a chain of overflow pages (page.h).

    def _open185(self, size: int, database) -> None:
        head = self._mm[:260]
        if len(head) < 260:
            raise self._err("truncated Berkeley DB 1.85 hash header")
        (_, version, lorder, bsize, bshift, _, _, _, _, _, max_bucket, _, _, _, nkeys,
         hdrpages) = struct.unpack_from(">16I", head, 0)
        if lorder not in (1234, 4321):
            raise self._err(f"Berkeley DB 1.85 hash header gives byte order {lorder}")
        if not 256 <= bsize <= 65536 or bsize != 1 << bshift:
            raise self._err(f"Berkeley DB 1.85 hash header gives page size {bsize}")
        if not 1 <= hdrpages <= 64 or max_bucket >= size:
            raise self._err("damaged Berkeley DB 1.85 hash header")
        if database is not None:
            raise self._err("holds a single unnamed database; there is nothing to pick "
                            f"with database={database!r}")
        self.bo = "<" if lorder == 1234 else ">"
        self.page_size = bsize
        self.npages = size // bsize
        self.checksums = self.encrypted = False
        self._spares185 = struct.unpack_from(">32I", head, 68)
        self._hdrpages185 = hdrpages
        self._subdbs = {}
        t = _Tree()
        t.kind, t.version, t.meta_pgno, t.flags = "hash185", version, 0, 0
        t.root = t.spares = None
        t.max_bucket, t.nelem = max_bucket, nkeys
        self._top = self._tree = t

    def _bucket185(self, bucket: int) -> int:
        if bucket == 0:
            return self._hdrpages185
        return bucket + self._hdrpages185 + self._spares185[_ceil_log2(bucket + 1) - 1]

    def _page185(self, pgno: int, seen: set, what: str, missing_ok: bool = False):
        """(page bytes, u16 table with p[0] = n) or None for a bucket page never written."""
        if pgno in seen:
            raise self._err(f"page chain loops at page {pgno}")
        seen.add(pgno)
        if pgno >= self.npages:
            if missing_ok:
                return None
            raise self._err(f"{what}: page {pgno} is outside the file ({self.npages} pages of "
                            f"{self.page_size} bytes); the file is truncated or damaged")
        ps = self.page_size
        page = self._mm[pgno * ps:(pgno + 1) * ps]
        n = struct.unpack_from(self.bo + "H", page, 0)[0]
        if (n + 3) * 2 > ps:
            raise self._err(f"page {pgno}: {n} entries cannot fit in a {ps}-byte page")
        p = struct.unpack_from("%s%dH" % (self.bo, n + 3), page, 0)
        return page, p

    def _ovfl185(self, addr: int, seen: set, where: int):
        """Follow an overflow address (split number << 11 | page within the split)."""
        split, offset = addr >> 11, addr & 0x7FF
        pgno = self._bucket185((1 << split) - 1) + offset
        return pgno, self._page185(pgno, seen, f"overflow page from page {where}")

    def _items185(self) -> Iterator[tuple[bytes, bytes]]:
        # A bucket page past the end of the file is an empty bucket that was never written
        # (as libdb 1.85 reads it), so truncation shows only in the count: the header's nkeys
        # is kept exact by every put and delete, and a walk that finds fewer is an error.
        count = 0
        for item in self._walk185():
            count += 1
            yield item
        if count != self._tree.nelem:
            raise self._err(f"found {count} records, the header says {self._tree.nelem}; "
                            "the file is truncated or damaged")

    def _walk185(self) -> Iterator[tuple[bytes, bytes]]:
        ps, seen = self.page_size, set()
        for bucket in range(self._tree.max_bucket + 1):
            pgno = self._bucket185(bucket)
            got = self._page185(pgno, seen, f"bucket {bucket}", missing_ok=True)
            while got is not None:
                page, p = got
                n = p[0]
                if n & 1:
                    raise self._err(f"page {pgno}: odd number of entries ({n})")
                lo, end, nxt = (n + 3) * 2, ps, None
                for i in range(1, n, 2):
                    koff, doff = p[i], p[i + 1]
                    if doff >= 4:                                 # REAL_KEY: a plain pair
                        if not lo <= doff <= koff <= end:
                            raise self._err(f"page {pgno}: items overlap or point outside the page")
                        yield page[koff:end], page[doff:koff]
                        end = doff
                    elif doff == 0:                               # OVFLPAGE
                        nxt = koff
                        break
                    elif i == 1:                                  # a big pair starts here
                        key, value, nxt = self._big185(pgno, page, p, seen)
                        yield key, value
                        break
                    else:
                        raise self._err(f"page {pgno}: big-pair marker after other pairs")
                if nxt is None:
                    break
                pgno, got = self._ovfl185(nxt, seen, pgno)

    def _big185(self, pgno: int, page: bytes, p, seen: set):
        """Collect a big key/data pair; return (key, value, next overflow address or None)."""
        ps = self.page_size

        def chunk(pgno, page, p, start, stop):
            if not (p[0] + 3) * 2 <= start <= stop <= ps:
                raise self._err(f"page {pgno}: big item offset outside the page")
            return page[start:stop]

        def follow(pgno, p):
            if p[0] < 4:
                raise self._err(f"page {pgno}: big item continues but names no next page")
            return self._ovfl185(p[p[0] - 1], seen, pgno)

        key, value = [], []
        while True:                                   # the key: PARTIAL_KEY pages, then FULL_*
            if p[0] < 2:
                raise self._err(f"page {pgno}: damaged big item")
            key.append(chunk(pgno, page, p, p[1], ps))
            if p[2] == 1:
                pgno, (page, p) = follow(pgno, p)
            elif p[2] in (2, 3):
                break
            else:
                raise self._err(f"page {pgno}: damaged big item (marker {p[2]})")
        if p[2] == 3:                                 # FULL_KEY_DATA: data starts here
            if p[0] < 4:
                raise self._err(f"page {pgno}: damaged big item")
            value.append(chunk(pgno, page, p, p[p[0]], p[1]))
            more = p[p[0] + 1] == 0                   # no free space: data continues
        else:                                         # FULL_KEY: data starts on the next page
            more = True
        while more:
            pgno, (page, p) = follow(pgno, p)
            if p[0] < 2 or p[2] not in (2, 3):
                raise self._err(f"page {pgno}: damaged big item data")
            value.append(chunk(pgno, page, p, p[1], ps))
            more = p[2] == 2
        nxt = p[3] if p[0] > 2 else None
        return b"".join(key), b"".join(value), nxt

    # -- public API --------------------------------------------------------------------------

    def databases(self) -> list[str]:
        """Names of the databases in a multi-database file ([] for a single-database file)."""
        return [k.decode("utf-8", "surrogateescape") for k in self._subdbs]

    def _selected(self) -> _Tree:
        if self._mm is None:
            raise ValueError("I/O operation on a closed BerkeleyDB")
        if self._tree is None:
            raise ChoiceNeededError(f"{self.name}: holds several databases {self.databases()}; pick one with "
                                    f"database= (--database NAME on the command line)", "--database", self.databases())
        return self._tree

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, value) record, streamed; hash order for hash, key order for btree."""
        tree = self._selected()
        seen = bytearray(self.npages)
        if tree.kind == "btree":
            return self._btree_items(tree, seen)
        if tree.kind == "hash185":
            return self._items185()
        return self._hash_items(tree, seen)

    __iter__ = items

    def __len__(self) -> int:
        """Number of records (duplicates counted one by one); counted by a full walk, because
        the counts cached in the meta page are only refreshed by DB->stat."""
        if self._len is None:
            self._len = sum(1 for _ in self.items())
        return self._len

    def info(self) -> dict:
        """Facts about the file and the selected database."""
        tree = self._tree or self._top
        dup_flag = BTM_DUP if tree.kind == "btree" else DB_HASH_DUP
        if tree.kind == "hash185":
            version_range = "1.85"
        else:
            version_range = (_HASH_RANGES if tree.kind == "hash" else _BTREE_RANGES)[tree.version]
        return {
            "type": "hash" if tree.kind == "hash185" else tree.kind,
            "version": tree.version,
            "version_range": version_range,
            "byte_order": "little" if self.bo == "<" else "big",
            "page_size": self.page_size,
            "checksums": self.checksums,
            "encrypted": self.encrypted,
            "record_count": len(self) if self._tree is not None else None,
            "subdatabases": self.databases(),
            "duplicates": bool(tree.flags & dup_flag) if self._tree is not None else False,
        }

    def close(self) -> None:
        self._mm = None
        if self._bytes is not None:
            self._bytes.close()
            self._bytes = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# -- the formats' readers, writers and identify facts (registered in bdb.py) ------------------

def read_format(path, options):
    with BerkeleyDB(path, database=options.database) as db:
        yield from db.items()


def write_format(path, records, options):
    """Native Berkeley DB files are written by the C library (bsddb3 / berkeleydb), where present."""
    try:
        from bsddb3 import db as bdb
    except ImportError:
        try:
            from berkeleydb import db as bdb
        except ImportError:
            from converter.errors import ConverterError
            import sys

            raise ConverterError(
                f"{path}: writing Berkeley DB needs the bsddb3 or berkeleydb module, which this Python "
                f"({sys.executable}) lacks; write db_dump text instead (--to db_dump) and load it with db_load"
            ) from None
    d = bdb.DB()
    d.open(str(path), dbtype=bdb.DB_HASH, flags=bdb.DB_CREATE)
    try:
        for key, value in records:
            d.put(key, value)
    finally:
        d.close()


def describe(path, options) -> dict:
    """Facts for ``convert identify`` about a Berkeley DB file."""
    with BerkeleyDB(path, database=options.database) as db:
        info = db.info()
    return {k: v for k, v in info.items() if v not in (None, [], False) or k == "checksums"}
