"""Berkeley DB reader and db_dump text, checked against the real library.

Two sources of truth:
* committed fixtures (tests/fixtures/bdb, made by make.py with Debian's bsddb3/db5.3), with
  what bsddb3's cursor read from each in expected.json: these run everywhere;
* databases made on the spot by Debian's /usr/bin/python3 + bsddb3 (and db5.3_load/dump/
  upgrade), read back by the same library in a subprocess: skipped when those are missing.
"""

import gzip
import importlib.util
import io
import json
import os
import pickle
import random
import shutil
import struct
import subprocess
import time
from pathlib import Path

import pytest

try:
    from converter.plugins import bdb
except ImportError:  # the package is not installed: import the plugins directory directly
    from plugins import bdb

from converter.errors import FormatError

FIX = Path(__file__).parent / "fixtures" / "bdb"
DEBIAN_PY = "/usr/bin/python3"
with gzip.open(FIX / "expected.json.gz", "rt") as _fh:
    EXPECTED = json.load(_fh)


def expected(name):
    return [(bytes.fromhex(k), bytes.fromhex(v)) for k, v in EXPECTED[name]]


def _load_make():
    spec = importlib.util.spec_from_file_location("bdb_fixture_make", FIX / "make.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


make = _load_make()


def read_all(path, **kw):
    with bdb.BerkeleyDB(path, **kw) as db:
        return list(db)


def page_types(path, ps=512):
    data = Path(path).read_bytes()
    return {data[i + 25] for i in range(ps, len(data), ps)}


# ---------------------------------------------------------------------------------------------
# committed fixtures


@pytest.mark.parametrize("name", ["hash.db", "btree_be_chksum.db", "ndbm.db", "hash185.db",
                                  "multi.db:alpha", "multi.db:beta",
                                  "btree_v6.db", "btree_v7.db", "btree_v8.db"])
def test_fixture_records_match_bsddb3_in_order(name):
    path, _, database = name.partition(":")
    assert read_all(FIX / path, database=database or None) == expected(name)


@pytest.mark.parametrize("version", [5, 6, 7, 8])
def test_old_hash_versions_match_what_db53_reads_after_upgrade(version):
    # The pages are unsorted (type 2, pairs reversed), so compare as multisets; bsddb3 read
    # the db5.3_upgrade'd copy, which sorts pages.
    got = read_all(FIX / f"hash_v{version}.db")
    assert sorted(got) == sorted(expected(f"hash_v{version}.db"))
    assert got != expected(f"hash_v{version}.db")  # really read in the unsorted order
    assert 2 in page_types(FIX / f"hash_v{version}.db")


def test_fixtures_exercise_the_features():
    # overflow (7), off-page duplicate trees (4 internal, 6 leaves), sorted hash pages (13)
    assert {4, 6, 7, 13} <= page_types(FIX / "hash.db")
    assert {3, 4, 5, 6, 7} <= page_types(FIX / "btree_be_chksum.db")
    recs = expected("hash.db")
    assert any(len(v) > 512 for _, v in recs) and any(len(k) > 512 for k, _ in recs)
    assert sum(1 for k, _ in recs if k == b"many dups") == 100


def test_sniff_fixtures():
    s = lambda f: bdb.sniff((FIX / f).read_bytes()[:512])
    assert s("hash.db") == "Berkeley DB hash v9 (4.6.18-6.0.20), little-endian, 512-byte pages"
    assert s("btree_be_chksum.db") == ("Berkeley DB btree v9 (4.1-6.0.20), big-endian, "
                                       "512-byte pages, checksummed")
    assert s("multi.db").endswith("several databases")
    assert s("encrypted.db").endswith("encrypted")
    assert s("ndbm.db").endswith("4096-byte pages")
    assert s("hash_v5.db").startswith("Berkeley DB hash v5 (2.1-2.7)")
    assert s("btree_v7.db").startswith("Berkeley DB btree v7 (3.0)")
    assert s("dump_print.txt") is None
    assert s("hash185.db") == "Berkeley DB 1.85 hash, big-endian, 512-byte pages"
    assert bdb.sniff(b"") is None and bdb.sniff(bytes(512)) is None
    assert bdb.sniff(random.Random(1).randbytes(512)) is None


def test_info_and_databases():
    with bdb.BerkeleyDB(FIX / "btree_be_chksum.db") as db:
        info = db.info()
        assert info == {"type": "btree", "version": 9, "version_range": "4.1-6.0.20",
                        "byte_order": "big", "page_size": 512, "checksums": True,
                        "encrypted": False, "record_count": len(expected("btree_be_chksum.db")),
                        "subdatabases": [], "duplicates": True}
        assert db.databases() == [] and len(db) == info["record_count"]
    with bdb.BerkeleyDB(FIX / "multi.db") as db:
        assert db.databases() == ["alpha", "beta"]
        with pytest.raises(FormatError, match="several databases"):
            list(db)
    with bdb.BerkeleyDB(FIX / "multi.db", database="alpha") as db:
        assert db.info()["type"] == "hash" and db.info()["subdatabases"] == ["alpha", "beta"]
    with pytest.raises(FormatError, match="no database named 'gamma'"):
        bdb.BerkeleyDB(FIX / "multi.db", database="gamma")
    with pytest.raises(FormatError, match="single unnamed database"):
        bdb.BerkeleyDB(FIX / "hash.db", database="alpha")


def test_hash185_info():
    with bdb.BerkeleyDB(FIX / "hash185.db") as db:
        assert db.info() == {"type": "hash", "version": 2, "version_range": "1.85",
                             "byte_order": "big", "page_size": 512, "checksums": False,
                             "encrypted": False, "record_count": len(expected("hash185.db")),
                             "subdatabases": [], "duplicates": False}
    recs = expected("hash185.db")
    assert any(len(k) > 512 for k, _ in recs) and any(len(v) > 1024 for _, v in recs)


def test_encrypted_is_a_clear_error():
    with pytest.raises(FormatError, match="encrypted Berkeley DB database; decrypt it with db_dump -P"):
        bdb.BerkeleyDB(FIX / "encrypted.db")


# ---------------------------------------------------------------------------------------------
# damaged files: every one a FormatError naming the file, in bounded time


def damaged(tmp_path, src, edit, name="damaged.db"):
    data = bytearray((FIX / src).read_bytes())
    edit(data)
    path = tmp_path / name
    path.write_bytes(bytes(data))
    return path


def assert_format_error(path, match=None, **kw):
    t = time.perf_counter()
    with pytest.raises(FormatError, match=match) as err:
        with bdb.BerkeleyDB(path, **kw) as db:
            for _ in db:
                pass
    assert str(path.name) in str(err.value)
    assert time.perf_counter() - t < 5
    return str(err.value)


@pytest.mark.parametrize("src", ["hash.db", "btree_be_chksum.db", "multi.db", "ndbm.db", "hash185.db"])
def test_truncated_anywhere_is_an_error(tmp_path, src):
    size = (FIX / src).stat().st_size
    ps = 4096 if src == "ndbm.db" else 512
    kw = {"database": "beta"} if src == "multi.db" else {}
    for cut in (0, 20, 100, ps - 1, ps, ps + 100, size // 2, size - ps, size - 1):
        path = tmp_path / f"cut{cut}.db"
        path.write_bytes((FIX / src).read_bytes()[:cut])
        assert_format_error(path, **kw)


def test_garbage(tmp_path):
    rnd = random.Random(7)
    path = tmp_path / "garbage.db"
    path.write_bytes(rnd.randbytes(4096))
    assert_format_error(path, "not a Berkeley DB")
    # a valid meta page followed by garbage pages
    path = damaged(tmp_path, "hash.db", lambda d: d.__setitem__(slice(512, None), rnd.randbytes(len(d) - 512)))
    assert_format_error(path)


def _set32(off, value, bo="<"):
    return lambda d: struct.pack_into(bo + "I", d, off, value)


def _hash_page_with(data, ptype, ps=512):
    return next(p for p in range(1, len(data) // ps) if data[p * ps + 25] == ptype)


def test_meta_fields_pointing_past_the_end(tmp_path):
    assert_format_error(damaged(tmp_path, "hash.db", _set32(72, 10_000_000)), "max_bucket")
    assert_format_error(damaged(tmp_path, "hash.db", _set32(96, 0xFFFFFF00)), "outside the file")
    assert_format_error(damaged(tmp_path, "btree_be_chksum.db", _set32(88, 999_999, ">")), "outside the file")
    assert_format_error(damaged(tmp_path, "hash.db", _set32(32, 999_999)), "truncated")
    assert_format_error(damaged(tmp_path, "hash.db", _set32(20, 3)), "page size")

    def subdb_past_end(d):  # the master database's value for 'alpha' is a big-endian pgno
        i = d.index(b"alpha")
        j = d.rindex(struct.pack(">I", 2), 512, 1024)
        struct.pack_into(">I", d, j, 77_777)
        assert i
    assert_format_error(damaged(tmp_path, "multi.db", subdb_past_end), "outside the file", database="alpha")


def test_looping_page_chains(tmp_path):
    def hash_loop(d):
        p = _hash_page_with(d, 13)
        struct.pack_into("<I", d, p * 512 + 16, p)        # next -> itself
    assert "page chain loops at page" in assert_format_error(damaged(tmp_path, "hash.db", hash_loop))

    def leaf_loop(d):
        leaves = [p for p in range(1, len(d) // 512) if d[p * 512 + 25] == 5]
        struct.pack_into(">I", d, leaves[-1] * 512 + 16, leaves[0])
    assert "page chain loops" in assert_format_error(damaged(tmp_path, "btree_be_chksum.db", leaf_loop))

    def hash185_loop(d):
        # point the first bucket page's overflow link back at bucket 0's page (hdrpages = 1)
        for pg in range(1, len(d) // 512):
            base = pg * 512
            n = struct.unpack_from(">H", d, base)[0]
            if n >= 2 and n % 2 == 0 and struct.unpack_from(">H", d, base + 2 * n)[0] == 0:
                struct.pack_into(">H", d, base + 2 * (n - 1), 0)   # split 0, page 0 -> page 1
                return
        raise AssertionError("no overflow link")
    assert "page chain loops" in assert_format_error(damaged(tmp_path, "hash185.db", hash185_loop))

    def overflow_loop(d):
        p = _hash_page_with(d, 7)
        struct.pack_into("<I", d, p * 512 + 16, p)
    assert "page chain loops at page" in assert_format_error(damaged(tmp_path, "hash.db", overflow_loop))


def test_overflow_chain_and_lengths(tmp_path):
    def first_ovfl_tlen(d, value):
        # find the H_OFFPAGE item (type 3) for 'overflow value' by its key
        for p in range(1, len(d) // 512):
            base = p * 512
            if d[base + 25] != 13:
                continue
            n = struct.unpack_from("<H", d, base + 20)[0]
            inp = struct.unpack_from("<%dH" % n, d, base + 26)
            for i in range(0, n, 2):
                if d[base + inp[i]] == 1 and d[base + inp[i] + 1:base + (inp[i - 1] if i else 512)] == b"overflow value":
                    assert d[base + inp[i + 1]] == 3
                    struct.pack_into("<I", d, base + inp[i + 1] + 8, value)
                    return
        raise AssertionError("no overflow item")
    assert_format_error(damaged(tmp_path, "hash.db", lambda d: first_ovfl_tlen(d, 0xFFFFFFFF)), "larger than the file")
    assert_format_error(damaged(tmp_path, "hash.db", lambda d: first_ovfl_tlen(d, 100)), "longer than")
    assert_format_error(damaged(tmp_path, "hash.db", lambda d: first_ovfl_tlen(d, 5000)), "expected 5000")

    def huge_entries(d):
        struct.pack_into("<H", d, _hash_page_with(d, 13) * 512 + 20, 0xFFFE)
    assert_format_error(damaged(tmp_path, "hash.db", huge_entries), "cannot fit")

    def bad_offset(d):
        base = _hash_page_with(d, 13) * 512
        struct.pack_into("<H", d, base + 26, 0xFFF0)
    assert_format_error(damaged(tmp_path, "hash.db", bad_offset), "outside the page")

    def huge_bkeydata(d):
        base = next(p for p in range(1, len(d) // 512) if d[p * 512 + 25] == 5) * 512
        n = struct.unpack_from(">H", d, base + 20)[0]
        inp = struct.unpack_from(">%dH" % n, d, base + 32)     # checksummed: index at 32
        off = next(o for o in inp if d[base + o + 2] == 1)     # a B_KEYDATA item
        struct.pack_into(">H", d, base + off, 0xFFFF)
    assert_format_error(damaged(tmp_path, "btree_be_chksum.db", huge_bkeydata), "runs off the page")


def test_random_corruption_never_escapes_as_another_exception(tmp_path):
    rnd = random.Random(12345)
    t0 = time.perf_counter()
    for src in ("hash.db", "btree_be_chksum.db", "multi.db", "hash185.db"):
        original = (FIX / src).read_bytes()
        for trial in range(60):
            data = bytearray(original)
            for _ in range(rnd.randint(1, 8)):
                data[rnd.randrange(len(data))] = rnd.randrange(256)
            path = tmp_path / "fuzz.db"
            path.write_bytes(bytes(data))
            try:
                with bdb.BerkeleyDB(path, database="beta" if src == "multi.db" else None) as db:
                    for _ in db:
                        pass
            except FormatError:
                pass
    assert time.perf_counter() - t0 < 30


# ---------------------------------------------------------------------------------------------
# db_dump text


def test_read_db5_dump_fixtures():
    assert list(bdb.read_db_dump(FIX / "dump_print.txt")) == expected("hash.db")
    assert list(bdb.read_db_dump(FIX / "dump_bytevalue.txt")) == expected("hash.db")
    with open(FIX / "dump_bytevalue.txt", "rb") as fh:
        assert list(bdb.read_db_dump(fh)) == expected("hash.db")
    assert bdb.dump_databases(FIX / "dump_multi.txt") == ["alpha", "beta"]
    assert bdb.dump_databases(FIX / "dump_print.txt") == []
    for name in ("alpha", "beta"):
        got = list(bdb.read_db_dump(FIX / "dump_multi.txt", database=name))
        assert got == expected("multi.db:" + name)
    with pytest.raises(FormatError, match="several databases"):
        list(bdb.read_db_dump(FIX / "dump_multi.txt"))
    with pytest.raises(FormatError, match="no database named"):
        list(bdb.read_db_dump(FIX / "dump_multi.txt", database="gamma"))


def test_dump_info():
    head = (FIX / "dump_print.txt").read_bytes()[:512]
    assert bdb.dump_info(head) == "db_dump text, format=print, type=hash"
    assert bdb.dump_info((FIX / "dump_bytevalue.txt").read_bytes()[:512]).startswith(
        "db_dump text, format=bytevalue")
    assert bdb.dump_info(b"VERSIONS") is None and bdb.dump_info((FIX / "hash.db").read_bytes()[:512]) is None


NASTY = [(b"", b""), (b"\\", b"\\\\x41"), (b"\n\r\t", b"line\nbreak"), (bytes(range(256)), b"all"),
         (b"caf\xc3\xa9", b"\xff\x00"), (b" leading space", b"trailing space ")]


@pytest.mark.parametrize("fmt", ["bytevalue", "print"])
def test_write_then_read_db_dump(tmp_path, fmt):
    path = tmp_path / "out.txt"
    assert bdb.write_db_dump(path, NASTY, format=fmt, type="btree", database="d\\b") == len(NASTY)
    assert list(bdb.read_db_dump(path, database="d\\b")) == NASTY
    assert bdb.dump_databases(path) == ["d\\b"]
    text = path.read_bytes()
    assert text.isascii() and text.startswith(b"VERSION=3\nformat=" + fmt.encode())
    buf = io.StringIO()
    bdb.write_db_dump(buf, NASTY, format=fmt)
    assert buf.getvalue().encode() == bdb_bytes(NASTY, fmt)


def bdb_bytes(items, fmt):
    b = io.BytesIO()
    bdb.write_db_dump(b, items, format=fmt)
    return b.getvalue()


@pytest.mark.parametrize("text, match", [
    (b"VERSION=3\nformat=print\ntype=hash\nHEADER=END\n key\n", "no value|DATA=END"),
    (b"VERSION=3\nformat=print\ntype=hash\nHEADER=END\n k\n v\n", "DATA=END"),
    (b"VERSION=3\nformat=bytevalue\ntype=hash\nHEADER=END\n zz\n 00\nDATA=END\n", "bad hex"),
    (b"VERSION=3\nformat=print\ntype=hash\nHEADER=END\n \\q1\n v\nDATA=END\n", "bad escape"),
    (b"VERSION=3\nformat=print\ntype=hash\nHEADER=END\nkey\n v\nDATA=END\n", "start with a space"),
    (b"VERSION=9\nHEADER=END\nDATA=END\n", "VERSION"),
    (b"VERSION=3\nformat=print\n", "HEADER=END"),
    (b"hello\n", "name=value|VERSION"),
])
def test_bad_dumps(tmp_path, text, match):
    path = tmp_path / "bad.txt"
    path.write_bytes(text)
    with pytest.raises(FormatError, match=match):
        list(bdb.read_db_dump(path))


# ---------------------------------------------------------------------------------------------
# live: databases made now by Debian's bsddb3, read back by bsddb3 itself

def _has_bsddb3():
    if not os.path.exists(DEBIAN_PY):
        return False
    return subprocess.run([DEBIAN_PY, "-c", "import bsddb3"], capture_output=True).returncode == 0


HAVE_BSDDB3 = _has_bsddb3()
needs_bsddb3 = pytest.mark.skipif(not HAVE_BSDDB3, reason="needs Debian /usr/bin/python3 with bsddb3")
needs_tools = pytest.mark.skipif(
    not HAVE_BSDDB3 or not all(shutil.which(t) for t in ("db5.3_load", "db5.3_dump", "db5.3_upgrade")),
    reason="needs db5.3-util and bsddb3")

# Runs under Debian's Python: builds every database described in a JSON list on stdin, then
# prints a pickle of what bsddb3's cursor reads back from each.
GEN = r"""
import json, pickle, sys
from bsddb3 import db
specs = json.load(sys.stdin)
TYPES = {"hash": db.DB_HASH, "btree": db.DB_BTREE, "queue": db.DB_QUEUE, "recno": db.DB_RECNO}
FLAGS = {"chksum": db.DB_CHKSUM, "dup": db.DB_DUP, "dupsort": db.DB_DUPSORT, "recnum": db.DB_RECNUM}
def read(path, name):
    d = db.DB(); d.open(path, name, db.DB_UNKNOWN, db.DB_RDONLY)
    c = d.cursor(); out = []; r = c.first()
    while r:
        out.append(r); r = c.next()
    c.close(); d.close(); return out
results = []
for s in specs:
    if s.get("ndbm"):
        import dbm.ndbm
        nd = dbm.ndbm.open(s["path"][:-3], "c")
        for k, v in s["puts"]:
            nd[bytes.fromhex(k)] = bytes.fromhex(v)
        nd.close()
    elif not s.get("read_only"):
        d = db.DB()
        if s.get("pagesize"): d.set_pagesize(s["pagesize"])
        if s.get("lorder"): d.set_lorder(s["lorder"])
        for f in s.get("flags", []): d.set_flags(FLAGS[f])
        if s.get("re_len"): d.set_re_len(s["re_len"])
        d.open(s["path"], s.get("name"), TYPES[s.get("type", "hash")], db.DB_CREATE)
        for k, v in s.get("puts", []):
            k = int(k) if s.get("type") in ("queue", "recno") else bytes.fromhex(k)
            d.put(k, bytes.fromhex(v))
        for k in s.get("deletes", []):
            d.delete(bytes.fromhex(k))
        if s.get("cursor_deletes"):
            c = d.cursor(); r = c.first(); i = 0
            while r:
                if i % 3 == 0: c.delete()
                r = c.next(); i += 1
            c.close()
        d.close()
    results.append(None if s.get("type") in ("queue", "recno") else read(s["path"], s.get("name")))
sys.stdout.buffer.write(pickle.dumps(results))
"""


def debian_build(specs):
    for s in specs:
        s["path"] = str(s["path"])
        for key in ("puts",):
            s[key] = [[k.hex() if isinstance(k, bytes) else str(k), v.hex()] for k, v in s.get(key, [])]
        s["deletes"] = [k.hex() for k in s.get("deletes", [])]
    out = subprocess.run([DEBIAN_PY, "-c", GEN], input=json.dumps(specs).encode(),
                         capture_output=True, check=True).stdout
    return pickle.loads(out)


def recs(n, seed=1, vlen=None):
    rnd = random.Random(seed)
    return [(b"key-%06d-%s" % (i, rnd.randbytes(rnd.randrange(0, 12)).hex().encode()),
             rnd.randbytes(vlen if vlen is not None else rnd.randrange(0, 40))) for i in range(n)]


def _cases():
    big = bytes(range(256)) * 40                    # 10 KB: overflow on 512 and 4096 pages
    c = {
        "empty": dict(),
        "tiny": dict(puts=[(b"a", b"1"), (b"b", b""), (b"", b"empty key")]),
        "splits": dict(pagesize=512, puts=recs(3000, 2)),
        "overflow_values": dict(pagesize=512, puts=recs(50, 3) + [(b"big%d" % i, big[i:]) for i in range(5)]),
        "overflow_keys": dict(pagesize=512, puts=[(b"K%d" % i + big[:600 + i * 300], b"v%d" % i) for i in range(6)]),
        "big_endian": dict(pagesize=512, lorder=4321, puts=recs(800, 4) + [(b"ov", big)]),
        "checksummed": dict(pagesize=512, flags=["chksum"], puts=recs(800, 5) + [(b"ov", big)]),
        "be_checksummed_dups": dict(pagesize=512, lorder=4321, flags=["chksum", "dup"],
                                    puts=recs(200, 6) + [(b"dk", b"%d" % i) for i in range(300)]),
        "dups": dict(pagesize=512, flags=["dup"],
                     puts=recs(300, 7) + [(b"few", b"x%d" % i) for i in range(3)]
                     + [(b"many", b"dup-%05d" % (i * 7919 % 1000)) for i in range(1000)]
                     + [(b"bigdups", big[:700 + i]) for i in range(4)]),
        "dupsort": dict(pagesize=512, flags=["dup", "dupsort"],
                        puts=recs(100, 8) + [(b"many", b"dup-%05d" % (i * 7919 % 1000)) for i in range(1000)]),
        "deletions": dict(pagesize=512, puts=recs(2000, 9), deletes=[k for k, _ in recs(2000, 9)[::2]]),
        "cursor_deletions": dict(pagesize=512, flags=["dup"], cursor_deletes=True,
                                 puts=recs(600, 10) + [(b"many", b"%d" % i) for i in range(200)]),
        "page_4096": dict(pagesize=4096, puts=recs(5000, 11) + [(b"ov", big)]),
        "page_65536": dict(pagesize=65536, puts=recs(5000, 12) + [(b"ov", big * 8)]),
    }
    return c


CASES = _cases()


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    if not HAVE_BSDDB3:
        pytest.skip("needs Debian /usr/bin/python3 with bsddb3")
    tmp = tmp_path_factory.mktemp("bdb_live")
    specs, keys = [], []
    for kind in ("hash", "btree"):
        for name, spec in CASES.items():
            specs.append(dict(spec, type=kind, path=tmp / f"{kind}_{name}.db"))
            keys.append((kind, name))
    # a multi-database file: three named databases of both types
    for i, (sub, kind) in enumerate([("alpha", "hash"), ("beta", "btree"), ("gamma\xe9", "hash")]):
        specs.append(dict(type=kind, name=sub, pagesize=512, path=tmp / "multi.db", puts=recs(300 + i * 50, 20 + i)))
        keys.append(("multi", sub))
    specs.append(dict(type="btree", name="only", lorder=4321, path=tmp / "single_named.db", puts=recs(40, 30)))
    keys.append(("single_named", "only"))
    specs.append(dict(ndbm=True, path=tmp / "nd.db", puts=recs(500, 31), read_only=False))
    keys.append(("ndbm", None))
    results = debian_build(specs)
    return tmp, dict(zip(keys, results))


@needs_bsddb3
@pytest.mark.parametrize("kind", ["hash", "btree"])
@pytest.mark.parametrize("case", list(CASES))
def test_live_matrix_matches_bsddb3_record_for_record(live, kind, case):
    tmp, ref = live
    path = tmp / f"{kind}_{case}.db"
    got = read_all(path)
    assert got == ref[(kind, case)]          # same records, same order as the C cursor
    with bdb.BerkeleyDB(path) as db:
        info = db.info()
        assert info["type"] == kind and info["record_count"] == len(ref[(kind, case)])
        assert info["byte_order"] == ("big" if "big_endian" in case or "be_" in case else "little")
        assert info["checksums"] == ("checksummed" in case)
        assert info["duplicates"] == ("dup" in case or case == "cursor_deletions")


@needs_bsddb3
def test_live_features_really_present(live):
    tmp, ref = live
    assert 12 in page_types(tmp / "btree_dupsort.db") and 12 in page_types(tmp / "hash_dupsort.db")
    assert 6 in page_types(tmp / "hash_dups.db") and 7 in page_types(tmp / "btree_overflow_keys.db")
    assert 3 in page_types(tmp / "btree_splits.db")
    many = [v for k, v in ref[("hash", "dups")] if k == b"many"]
    assert len(many) == 1000 and many != sorted(many)            # insertion order kept
    many = [v for k, v in ref[("btree", "dupsort")] if k == b"many"]
    assert len(many) == 1000 and many == sorted(many)


@needs_bsddb3
def test_live_multi_database_file(live):
    tmp, ref = live
    with bdb.BerkeleyDB(tmp / "multi.db") as db:
        assert db.databases() == ["alpha", "beta", "gamma\xe9"]
        assert db.info()["subdatabases"] == ["alpha", "beta", "gamma\xe9"]
        with pytest.raises(FormatError, match="pick one with database="):
            list(db)
    for sub in ("alpha", "beta", "gamma\xe9"):
        with bdb.BerkeleyDB(tmp / "multi.db", database=sub) as db:
            assert list(db) == ref[("multi", sub)]
            assert db.info()["type"] == ("btree" if sub == "beta" else "hash")
    # one named database in a file: database=None reads it; by name too
    assert read_all(tmp / "single_named.db") == ref[("single_named", "only")]
    assert read_all(tmp / "single_named.db", database=b"only") == ref[("single_named", "only")]


@needs_bsddb3
def test_live_debian_dbm_ndbm_file(live):
    tmp, ref = live
    assert read_all(tmp / "nd.db") == ref[("ndbm", None)] and len(ref[("ndbm", None)]) == 500
    assert bdb.sniff((tmp / "nd.db").read_bytes()[:512]).startswith("Berkeley DB hash v9")


@needs_bsddb3
def test_live_deleted_flag_is_skipped_like_bsddb3(tmp_path):
    # Set B_DELETE on a btree data item by hand: bsddb3's cursor skips the pair; so must we.
    path = tmp_path / "b.db"
    (before,) = debian_build([dict(type="btree", pagesize=512, path=path, puts=recs(30, 40))])
    data = bytearray(path.read_bytes())
    base = 512 * next(p for p in range(1, len(data) // 512) if data[p * 512 + 25] == 5)
    off = struct.unpack_from("<H", data, base + 26 + 2 * 5)[0]   # data item of pair 2
    data[base + off + 2] |= 0x80
    path.write_bytes(bytes(data))
    (after,) = debian_build([dict(read_only=True, path=path)])
    assert len(after) == len(before) - 1
    assert read_all(path) == after


@needs_bsddb3
def test_live_btree_with_record_numbers(tmp_path):
    (ref,) = debian_build([dict(type="btree", flags=["recnum"], pagesize=512, path=tmp_path / "rn.db",
                                puts=recs(2000, 80))])
    assert read_all(tmp_path / "rn.db") == ref and len(ref) == 2000


@needs_bsddb3
def test_live_unsupported_kinds_are_named(tmp_path):
    debian_build([dict(type="queue", re_len=8, path=tmp_path / "q.db", puts=[(1, b"abc")]),
                  dict(type="recno", path=tmp_path / "r.db", puts=[(1, b"abc")])])
    assert bdb.sniff((tmp_path / "q.db").read_bytes()[:512]).startswith("Berkeley DB queue")
    assert bdb.sniff((tmp_path / "r.db").read_bytes()[:512]).startswith("Berkeley DB recno")
    assert_format_error(tmp_path / "q.db", "queue databases are not supported")
    assert_format_error(tmp_path / "r.db", "recno databases are not supported")


@needs_tools
@pytest.mark.parametrize("kind,version", [("hash", 8), ("hash", 7), ("hash", 6), ("hash", 5),
                                          ("btree", 8), ("btree", 7)])
def test_live_older_versions_checked_by_db53_upgrade(tmp_path, kind, version):
    # Many buckets (several doublings) so the 2.x spares arithmetic is exercised.
    src = tmp_path / "src.db"
    n = 3000 if kind == "hash" else 3
    (ref,) = debian_build([dict(type=kind, pagesize=512, path=src,
                                puts=recs(n, 50) + [(b"ov", b"z" * 2000)])])
    old = tmp_path / f"old_v{version}.db"
    convert = make.convert_hash if kind == "hash" else make.convert_btree
    old.write_bytes(convert(src.read_bytes(), version))
    got = read_all(old)
    upgraded = tmp_path / "upgraded.db"
    shutil.copy(old, upgraded)
    subprocess.run(["db5.3_upgrade", str(upgraded)], check=True, capture_output=True)
    (ref_up,) = debian_build([dict(read_only=True, path=upgraded)])
    assert sorted(got) == sorted(ref_up) == sorted(ref)
    assert bdb.BerkeleyDB(old).info()["version"] == version


@needs_tools
@pytest.mark.parametrize("fmt", ["bytevalue", "print"])
@pytest.mark.parametrize("kind", ["hash", "btree"])
def test_live_write_db_dump_loads_with_db53_load(tmp_path, fmt, kind):
    items = NASTY + recs(500, 60) + [(b"big", bytes(range(256)) * 30)]
    dups = [(b"dupkey", b"v%d" % i) for i in range(5)]
    text = tmp_path / "dump.txt"
    assert bdb.write_db_dump(text, items + dups, type=kind, format=fmt, database="named db",
                             duplicates=True) == len(items) + len(dups)
    out = tmp_path / "loaded.db"
    subprocess.run(["db5.3_load", "-f", str(text), str(out)], check=True, capture_output=True)
    (ref,) = debian_build([dict(read_only=True, path=out, name="named db")])
    assert sorted(ref) == sorted(items + dups)
    assert read_all(out, database="named db") == ref
    # and db5.3_dump of it reads back through read_db_dump, both formats
    for flags in ([], ["-p"]):
        dumped = subprocess.run(["db5.3_dump", *flags, "-s", "named db", str(out)],
                                check=True, capture_output=True).stdout
        (tmp_path / "again.txt").write_bytes(dumped)
        assert list(bdb.read_db_dump(tmp_path / "again.txt")) == ref


LIBDB1 = make.find_libdb1()


@pytest.mark.skipif(LIBDB1 is None, reason="needs glibc's db 1.85 library (libdb1-compat); set LIBDB1")
@pytest.mark.parametrize("bsize", [512, 4096])
@pytest.mark.parametrize("lorder", [1234, 4321])
def test_live_hash185_matches_libdb1(tmp_path, bsize, lorder):
    path = tmp_path / "h185.db"
    puts = make.records185(1500, bsize) + recs(300, 70)
    make.db185_write(LIBDB1, path, puts, deletes=[k for k, _ in puts[::7]], bsize=bsize, lorder=lorder)
    ref = make.db185_read(LIBDB1, path)
    assert len(ref) == len(dict(puts)) - len({k for k, _ in puts[::7]})
    assert read_all(path) == ref
    assert bdb.sniff(path.read_bytes()[:512]) == "Berkeley DB 1.85 hash, %s-endian, %d-byte pages" % (
        "little" if lorder == 1234 else "big", bsize)


@pytest.mark.parametrize("fixture", ["hash.db", "btree_v8.db"])
@pytest.mark.parametrize("page_size", [0, 1000, 131072])
def test_a_damaged_page_size_is_a_failing_berkeley_db_store_not_junk(tmp_path, fixture, page_size):
    """The magic, the version and page 0 say Berkeley DB: a broken page size must not make the
    file 'not data' to migrate (exit 0, its records silently absent) or SQLite by its name."""
    import struct
    import sys

    data = bytearray((FIX / fixture).read_bytes())
    little = data[12:16] in (b"\x61\x15\x06\x00", b"\x62\x31\x05\x00")
    struct.pack_into("<I" if little else ">I", data, 20, page_size)
    src = tmp_path / "tree"
    src.mkdir()
    (src / "store.db").write_bytes(bytes(data))
    run = [sys.executable, "-m", "converter"]
    r = subprocess.run([*run, src / "store.db", tmp_path / "x.json"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stderr.strip() == \
        f"convert: error: {src / 'store.db'}: meta page gives an impossible page size {page_size}", r.stderr
    r = subprocess.run([*run, "migrate", src, tmp_path / "out", "-q"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stderr
    report = json.loads((tmp_path / "out" / "migration-report.json").read_text())
    assert report["not_data"] == [] and [e["format"] for e in report["stores"]] == ["berkeleydb"]
    assert "impossible page size" in report["stores"][0]["error"]
