"""The pure-Python gdbm reader and the gdbm dump formats, checked against GNU gdbm 1.23.

Core checks use the committed fixtures in tests/fixtures/gdbm (made by make.py
with the real software; ``expected/*.json`` holds what the C library returned).
Checks marked "tools" regenerate files with Debian's /usr/bin/python3
(dbm.gnu), gdbmtool, gdbm_dump and gdbm_load, and skip when those are missing.
"""

import base64
import importlib.util
import io
import json
import os
import random
import shutil
import struct
import subprocess
import threading
import time

import pytest

try:
    from converter.plugins import gdbm as G
except ImportError:  # package not installed: import the plugins dir directly
    from plugins import gdbm as G

from converter.errors import FormatError, UnsupportedValueError

FIX = os.path.join(os.path.dirname(__file__), "fixtures", "gdbm")
DEBIAN_PY = os.environ.get("GDBM_TEST_C_PYTHON", "/usr/bin/python3")  # a Python with dbm.gnu

_spec = importlib.util.spec_from_file_location("gdbm_fixture_make", os.path.join(FIX, "make.py"))
make = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make)

DB_FIXTURES = ["empty.db", "std.db", "reorg.db", "small512.db", "numsync.db", "compat.pag"]


def expected(name):
    src = make.SOURCES.get(name, name)
    with open(os.path.join(FIX, "expected", src + ".json")) as f:
        return [(base64.b64decode(k), base64.b64decode(v)) for k, v in json.load(f)]


def read_all(path, **kw):
    with G.GdbmFile(path, **kw) as db:
        return list(db)


def fixture_bytes(name):
    with open(os.path.join(FIX, name), "rb") as f:
        return f.read()


def write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


# -- tools --------------------------------------------------------------------

def _have_debian_gdbm():
    if not os.path.exists(DEBIAN_PY):
        return False
    r = subprocess.run([DEBIAN_PY, "-c", "import dbm.gnu"], capture_output=True)
    return r.returncode == 0


HAVE_C = _have_debian_gdbm()
HAVE_TOOLS = HAVE_C and all(shutil.which(t) for t in ("gdbmtool", "gdbm_dump", "gdbm_load"))
needs_c = pytest.mark.skipif(not HAVE_C, reason="Debian python3 with dbm.gnu not available")
needs_tools = pytest.mark.skipif(not HAVE_TOOLS, reason="gdbmtool/gdbm_dump/gdbm_load or dbm.gnu missing")

_C_READ = r"""
import dbm.gnu, json, sys
db = dbm.gnu.open(sys.argv[1], "r")
out = []
k = db.firstkey()
while k is not None:
    out.append([k.hex(), db[k].hex()])
    k = db.nextkey(k)
json.dump(out, sys.stdout)
"""


def c_read(path):
    """Records as the C library (Debian python3 dbm.gnu) iterates them."""
    r = subprocess.run([DEBIAN_PY, "-c", _C_READ, str(path)], capture_output=True, check=True)
    return [(bytes.fromhex(k), bytes.fromhex(v)) for k, v in json.loads(r.stdout)]


def c_write(path, script):
    """Run a Debian python3 snippet with `db` open for writing (mode 'n') on path."""
    code = "import dbm.gnu, sys\ndb = dbm.gnu.open(sys.argv[1], 'n')\n" + script + "\ndb.close()\n"
    subprocess.run([DEBIAN_PY, "-c", code, str(path)], check=True)


# -- reading committed fixtures ---------------------------------------------------------

@pytest.mark.parametrize("name", DB_FIXTURES)
def test_fixture_records_match_c_library_in_order(name):
    want = expected(name)
    with G.GdbmFile(os.path.join(FIX, name)) as db:
        got = list(db)
        assert len(db) == len(want)
        assert db.info()["record_count"] == len(want)
    # same records, same order as gdbm_firstkey/gdbm_nextkey
    assert got == want


def test_fixtures_cover_the_interesting_cases():
    # guard against make.py silently losing what the tests rely on
    std = dict(expected("std.db"))
    assert b"" in std and b"" in std.values()
    assert max(len(v) for v in std.values()) > 4096
    assert b"key-0" not in std  # deleted
    with G.GdbmFile(os.path.join(FIX, "small512.db")) as db:
        info = db.info()
    assert info["block_size"] == 512 and info["dir_bits"] > 6  # the directory grew
    assert info["bucket_count"] > 50
    with G.GdbmFile(os.path.join(FIX, "numsync.db")) as db:
        info = db.info()
    assert info["flavour"] == "numsync" and info["numsync"] == 2 and info["magic"] == "0x13579ad1"


def test_huge_bucket_path_gives_the_same_records():
    """Buckets of more than 64 Ki slots are unpacked element by element; force that path."""
    with G.GdbmFile(os.path.join(FIX, "small512.db")) as db:
        db._table = None
        assert list(db) == expected("small512.db")
        assert len(db) == len(expected("small512.db"))


def test_info_of_std_db():
    with G.GdbmFile(os.path.join(FIX, "std.db")) as db:
        info = db.info()
    assert info["flavour"] == "standard"
    assert info["byte_order"] == "little" and info["offset_size"] == 8
    assert info["dir_size"] == 8 << info["dir_bits"]
    assert info["file_size"] == os.path.getsize(os.path.join(FIX, "std.db"))
    assert "numsync" not in info


@pytest.mark.parametrize("name", sorted(make.CONVERSIONS))
def test_constructed_layouts(tmp_path, name):
    """32-bit offsets, big-endian, 4-aligned 64-bit and original-magic files, built by make.convert."""
    src, kw = make.CONVERSIONS[name]
    path = write(tmp_path, name, make.convert(fixture_bytes(src), **kw))
    want = expected(src)
    with G.GdbmFile(path) as db:
        info = db.info()
        assert list(db) == want
    assert info["offset_size"] == kw["off_size"]
    assert info["byte_order"] == kw["byteorder"]
    assert info["offset_alignment"] == kw.get("align", kw["off_size"])
    assert info["record_count"] == len(want)
    if "numsync" in kw:
        assert info["flavour"] == "numsync" and info["numsync"] == kw["numsync"]
    with open(path, "rb") as f:
        desc = G.sniff(f.read(64))
    assert desc.endswith(f"{kw['off_size'] * 8}-bit offsets, {kw['byteorder']}-endian")


@needs_c
def test_original_magic_native_layout_is_read_by_c_library_too(tmp_path):
    src, kw = make.CONVERSIONS["omagic64.db"]
    path = write(tmp_path, "omagic64.db", make.convert(fixture_bytes(src), **kw))
    assert read_all(path) == c_read(path) == expected(src)


@pytest.mark.skipif(not os.environ.get("GDBM_RS_DATA"), reason="set GDBM_RS_DATA to gdbm-native-rs's src/data")
def test_gdbm_native_rs_real_foreign_files():
    """Optional: real files written by the C library on other platforms (jgarzik/gdbm-native-rs,
    MIT, src/data: le32 = i386 with 8-byte offsets aligned to 4, be32/be64 big-endian).
    Not committed here; point GDBM_RS_DATA at a checkout's src/data to run it."""
    data = os.environ["GDBM_RS_DATA"]
    names = [n for n in os.listdir(data) if ".db." in n]
    assert names
    for name in names:
        plan, _, arch = name.split(".")[:3]
        with open(os.path.join(data, f"{plan}.json.{arch}")) as f:
            want = sorted((k.encode(), v.encode()) for k, v in json.load(f)["data"])
        with G.GdbmFile(os.path.join(data, name)) as db:
            assert sorted(db) == want, name
            assert db.info()["byte_order"] == ("big" if arch.startswith("be") else "little")
            assert db.info()["flavour"] == ("numsync" if name.endswith(".numsync") else "standard")


def test_sniff():
    for magic, desc in G.GDBM_MAGICS.items():
        assert G.sniff(struct.pack("<I", magic)).startswith(desc)
        assert G.sniff(struct.pack("<I", magic)).endswith("little-endian")
        assert G.sniff(struct.pack(">I", magic)).endswith("big-endian")
    assert G.sniff(fixture_bytes("std.db")[:4]) == "gdbm, 64-bit offsets, little-endian"
    assert G.sniff(fixture_bytes("numsync.db")[:4]) == "gdbm numsync (1.21+), 64-bit offsets, little-endian"
    assert G.sniff(b"\xce\x9aW") is None
    assert G.sniff(b"SQLite format 3\0") is None
    assert G.sniff(b"") is None


# -- ndbm on gdbm_compat ------------------------------------------------------------------

def test_ndbm_pag_path(tmp_path):
    base = os.path.join(FIX, "compat")
    for given in (base, base + ".dir", base + ".pag"):
        assert G.ndbm_pag_path(given) == base + ".pag"
    assert read_all(base + ".pag") == expected("compat.pag")
    assert fixture_bytes("compat.dir")[:4] == b"GDBM"

    pag = fixture_bytes("compat.pag")
    # gdbm 1.8 made NAME.dir a hard link to NAME.pag
    write(tmp_path, "old.pag", pag)
    os.link(tmp_path / "old.pag", tmp_path / "old.dir")
    assert G.ndbm_pag_path(str(tmp_path / "old")) == str(tmp_path / "old.pag")
    # an empty NAME.dir is accepted too
    write(tmp_path, "e.pag", pag)
    write(tmp_path, "e.dir", b"")
    assert G.ndbm_pag_path(str(tmp_path / "e.dir")) == str(tmp_path / "e.pag")
    # not gdbm_compat: a foreign .dir, a missing .dir, a .pag that is not gdbm
    write(tmp_path, "f.pag", pag)
    write(tmp_path, "f.dir", b"x" * 16)
    assert G.ndbm_pag_path(str(tmp_path / "f")) is None
    write(tmp_path, "m.pag", pag)
    assert G.ndbm_pag_path(str(tmp_path / "m")) is None
    write(tmp_path, "n.pag", b"\0" * 1024)
    write(tmp_path, "n.dir", b"")
    assert G.ndbm_pag_path(str(tmp_path / "n")) is None
    assert G.ndbm_pag_path(str(tmp_path / "nothing")) is None


# -- dumps ------------------------------------------------------------------------------------

def test_read_gdbm_ascii_dump_with_empty_values():
    path = os.path.join(FIX, "std.dump")
    text = fixture_bytes("std.dump")
    assert b"#:len=0\n#:len=" in text  # gdbm 1.23's form: no data line for an empty datum
    assert list(G.read_dump(path)) == expected("std.dump")
    # gdbm_dump writes '#:file=NAME' unquoted, so a name with a comma breaks the header syntax
    odd = text.replace(b"#:file=", b"#:file=a,b c,", 1)
    assert list(G.read_dump(io.BytesIO(odd))) == expected("std.dump")
    with open(path, "rb") as f:
        assert list(G.read_dump(f)) == expected("std.dump")
    assert G.dump_info(text[:200]) == "gdbm ASCII dump v1.1"


def test_read_gdbm_binary_dump():
    path = os.path.join(FIX, "small512.bin")
    assert list(G.read_dump(path)) == expected("small512.bin")
    assert G.dump_info(fixture_bytes("small512.bin")[:64]) == "gdbm binary dump"
    assert G.dump_info(b"#:len=3\n") is None
    assert G.dump_info(b"\x00\x01") is None


def _rewrap_binary(data, layout):
    """Re-encode an LP64 little-endian binary dump's length words (constructed: other hosts)."""
    end = 0
    for _ in range(4):
        end = data.index(b"\n", end) + 1
    out = bytearray(data[:end])
    pos = end
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 4], "big")
        assert data[pos + 4:pos + 8] == b"\0\0\0\0"
        word = {"4": data[pos:pos + 4], "8be": b"\0\0\0\0" + data[pos:pos + 4]}[layout]
        out += word + data[pos + 8:pos + 8 + n]
        pos += 8 + n
    return bytes(out)


@pytest.mark.parametrize("layout", ["4", "8be"])
def test_binary_dump_from_other_hosts(tmp_path, layout):
    data = _rewrap_binary(fixture_bytes("small512.bin"), layout)
    assert list(G.read_dump(write(tmp_path, "x.bin", data))) == expected("small512.bin")


@pytest.mark.parametrize("layout", ["8le", "4", "8be"])
def test_binary_dump_through_a_pipe(layout):
    data = fixture_bytes("small512.bin")
    if layout != "8le":
        data = _rewrap_binary(data, layout)
    r, w = os.pipe()

    def feed():
        with os.fdopen(w, "wb") as f:
            f.write(data)

    t = threading.Thread(target=feed)
    t.start()
    with os.fdopen(r, "rb") as f:
        got = list(G.read_dump(f, name="pipe"))
    t.join()
    assert got == expected("small512.bin")


SAMPLE = [
    (b"alpha", b"one"),
    (b"", b"value of the empty key"),
    (b"empty value", b""),
    (b"\x00\xff bin", bytes(range(256)) * 3),
    (b"big", b"z" * 10000),
    ("ü".encode(), b"\n#:len=5\n"),
    (b"another empty", b""),
]


def test_ascii_dump_writer_round_trip():
    buf = io.BytesIO()
    assert G.write_ascii_dump(buf, iter(SAMPLE), name="a,b \"c\"") == len(SAMPLE)
    data = buf.getvalue()
    assert G.dump_info(data[:100]) == "gdbm ASCII dump v1.1"
    assert max(len(line) for line in data.split(b"\n")) <= 76
    assert sorted(G.read_dump(io.BytesIO(data))) == sorted(SAMPLE)


def test_ascii_dump_writer_needs_one_full_record():
    with pytest.raises(UnsupportedValueError):
        G.write_ascii_dump(io.BytesIO(), [(b"", b"x"), (b"k", b"")])
    with pytest.raises(UnsupportedValueError):
        G.write_ascii_dump(io.BytesIO(), [(b"k", b""), (b"k2", b"")])
    buf = io.BytesIO()
    assert G.write_ascii_dump(buf, []) == 0
    assert list(G.read_dump(io.BytesIO(buf.getvalue()))) == []


def test_binary_dump_writer_round_trip_and_empty_data():
    recs = [r for r in SAMPLE if r[0] and r[1]]
    buf = io.BytesIO()
    assert G.write_binary_dump(buf, recs) == len(recs)
    assert G.dump_info(buf.getvalue()[:64]) == "gdbm binary dump"
    assert list(G.read_dump(io.BytesIO(buf.getvalue()))) == recs
    for bad in ([(b"k", b"")], [(b"", b"v")]):
        with pytest.raises(UnsupportedValueError):
            G.write_binary_dump(io.BytesIO(), bad)


def test_writers_reject_non_bytes():
    with pytest.raises(UnsupportedValueError):
        G.write_ascii_dump(io.BytesIO(), [("text", b"v")])
    with pytest.raises(UnsupportedValueError):
        G.write_binary_dump(io.BytesIO(), [(b"k", 3)])


# -- damaged input ---------------------------------------------------------------------------

def _outcome(path, timeout=5.0):
    """Records, or the FormatError; anything else (or a slow read) fails the test."""
    t0 = time.monotonic()
    try:
        with G.GdbmFile(path) as db:
            n = len(db)
            recs = list(db)
            assert n == len(recs)
            out = recs
    except FormatError as e:
        msg = str(e)
        assert msg.startswith(str(path)) and "offset" in msg, msg
        out = e
    assert time.monotonic() - t0 < timeout
    return out


@pytest.mark.parametrize("name", ["std.db", "small512.db", "numsync.db", "compat.pag"])
def test_truncated_files_error_or_give_everything(tmp_path, name):
    data = fixture_bytes(name)
    want = expected(name)
    cuts = sorted(set(range(0, len(data), 512)) | {1, 3, 4, 31, 39, 41, 100, len(data) // 2, len(data) - 1}
                  | set(random.Random(name).sample(range(len(data)), 40)))
    errors = 0
    for cut in cuts:
        path = write(tmp_path, "cut.db", data[:cut])
        out = _outcome(path)
        if isinstance(out, FormatError):
            errors += 1
        else:
            assert out == want, f"cut at {cut} gave {len(out)} of {len(want)} records"
    assert errors > len(cuts) // 2


def test_cut_in_half_is_an_error_not_zero_records(tmp_path):
    data = fixture_bytes("small512.db")
    path = write(tmp_path, "half.db", data[: len(data) // 2])
    with pytest.raises(FormatError, match="half.db"):
        read_all(path)


@pytest.mark.parametrize("content", [b"", b"\x13", b"\xcf\x9a\x57\x13", b"garbage" * 100,
                                     b"\xcf\x9a\x57\x13" + bytes(4092), b"\xcf\x9a\x57\x13" + b"\xff" * 8000])
def test_garbage(tmp_path, content):
    path = write(tmp_path, "g.db", content)
    with pytest.raises(FormatError, match="g.db"):
        read_all(path)


def test_random_garbage_after_magic(tmp_path):
    rng = random.Random(7)
    for i in range(50):
        body = bytes(rng.getrandbits(8) for _ in range(rng.choice([40, 600, 5000])))
        assert isinstance(_outcome(write(tmp_path, "r.db", b"\xcf\x9a\x57\x13" + body)), FormatError)


def _hdr(data):
    return list(struct.unpack_from("<iiqiiiiq", data, 0))


def _set_hdr(data, fields):
    out = bytearray(data)
    struct.pack_into("<iiqiiiiq", out, 0, *fields)
    return bytes(out)


# (field index, new value) for header fields; 2 = dir offset, 3 = dir size, 4 = dir bits,
# 1 = block size, 5 = bucket size, 6 = bucket elems
HEADER_DAMAGE = {
    "dir past end": (2, 1 << 40),
    "dir at header": (2, 0),
    "dir ends past eof": (2, None),  # filled in: file size - 8
    "dir size vs bits": (3, 4096 * 2),
    "dir bits vs size": (4, 10),
    "dir bits huge": (4, 40),
    "block size zero": (1, 0),
    "block size huge": (1, 1 << 30),
    "block size negative": (1, -4096),
    "bucket size tiny": (5, 100),
    "bucket elems": (6, 100),
    "bucket size past eof": (5, 1 << 29),
}


@pytest.mark.parametrize("case", sorted(HEADER_DAMAGE))
def test_header_damage(tmp_path, case):
    data = fixture_bytes("std.db")
    idx, value = HEADER_DAMAGE[case]
    fields = _hdr(data)
    fields[idx] = len(data) - 8 if value is None else value
    path = write(tmp_path, "h.db", _set_hdr(data, fields))
    with pytest.raises(FormatError, match=r"h\.db: offset 0"):
        G.GdbmFile(path)


def _dir_entries(data):
    _m, _bs, dir_off, dir_size, *_ = _hdr(data)
    n = dir_size // 8
    return dir_off, list(struct.unpack_from("<%dq" % n, data, dir_off))


def _set_dir(data, entries):
    dir_off, _ = _dir_entries(data)
    out = bytearray(data)
    struct.pack_into("<%dq" % len(entries), out, dir_off, *entries)
    return bytes(out)


def test_directory_pointing_at_the_header(tmp_path):
    data = fixture_bytes("small512.db")
    _, entries = _dir_entries(data)
    path = write(tmp_path, "d.db", _set_dir(data, [0] * len(entries)))
    with pytest.raises(FormatError, match="outside"):
        G.GdbmFile(path)


def test_directory_loop_to_the_same_bucket(tmp_path):
    data = fixture_bytes("small512.db")
    _, entries = _dir_entries(data)
    runs = []  # (start, length) of each bucket's run
    i = 0
    while i < len(entries):
        j = i
        while j < len(entries) and entries[j] == entries[i]:
            j += 1
        runs.append((i, j - i))
        i = j
    # point the second run of the same length as the first at the first bucket
    (s0, l0), (s1, l1) = runs[0], next(r for r in runs[1:] if r[1] == runs[0][1])
    entries[s1:s1 + l1] = [entries[s0]] * l1
    path = write(tmp_path, "loop.db", _set_dir(data, entries))
    with pytest.raises(FormatError, match="loop.db"):
        G.GdbmFile(path)


def test_directory_entry_past_eof_and_unaligned(tmp_path):
    data = fixture_bytes("small512.db")
    _, entries = _dir_entries(data)
    for bad in (len(data) - 10, 1 << 40, -512):
        e = list(entries)
        e[-1] = bad
        with pytest.raises(FormatError, match=r"p\.db: offset"):
            G.GdbmFile(write(tmp_path, "p.db", _set_dir(data, e)))
        e = [bad] * len(entries)
        with pytest.raises(FormatError, match="outside"):
            G.GdbmFile(write(tmp_path, "p.db", _set_dir(data, e)))
    # a bucket offset that is inside the file but not a bucket: wrong bits/count → error
    e = list(entries)
    e[0:len(e)] = [e[0] + 8] * len(e)
    assert isinstance(_outcome(write(tmp_path, "u.db", _set_dir(data, e))), FormatError)


def _first_used_slot(data):
    """File offset of the first non-empty bucket element of the first bucket that has one."""
    _, entries = _dir_entries(data)
    bucket_elems = _hdr(data)[6]
    for b in entries:
        for i in range(bucket_elems):
            at = b + 112 + 24 * i
            if struct.unpack_from("<i", data, at)[0] != -1:
                return at
    raise AssertionError("no record")


@pytest.mark.parametrize("field,value", [
    ("key_size", 0x7FFFFFFF),  # 2 GB key pointing past the end
    ("key_size", -5),
    ("data_size", 0x7FFFFFF0),
    ("data_pointer", 1 << 50),
    ("data_pointer", 10),  # inside the header
    ("hash", -7),
    ("hash", 0x7FFFFFFF),  # belongs to another bucket
])
def test_element_damage(tmp_path, field, value):
    data = bytearray(fixture_bytes("small512.db"))
    at = _first_used_slot(data)
    fmt, off = {"hash": ("<i", 0), "data_pointer": ("<q", 8), "key_size": ("<i", 16), "data_size": ("<i", 20)}[field]
    struct.pack_into(fmt, data, at + off, value)
    path = write(tmp_path, "e.db", bytes(data))
    t0 = time.monotonic()
    with pytest.raises(FormatError, match=r"e\.db: offset %d" % at):
        read_all(path)
    assert time.monotonic() - t0 < 2


def test_bucket_count_mismatch(tmp_path):
    data = bytearray(fixture_bytes("small512.db"))
    _, entries = _dir_entries(data)
    b = entries[0]
    count = struct.unpack_from("<i", data, b + 108)[0]
    struct.pack_into("<i", data, b + 108, count + 1)
    path = write(tmp_path, "c.db", bytes(data))
    with pytest.raises(FormatError, match="holds"):
        read_all(path)
    with G.GdbmFile(path) as db, pytest.raises(FormatError, match="holds"):
        len(db)
    struct.pack_into("<i", data, b + 108, 10 ** 6)
    with pytest.raises(FormatError, match="count"):
        G.GdbmFile(write(tmp_path, "c2.db", bytes(data)))


def test_random_byte_flips_only_ever_raise_format_error(tmp_path):
    data = fixture_bytes("small512.db")
    _, entries = _dir_entries(data)
    dir_off = _hdr(data)[2]
    # flip bytes inside the structures (header, directory, bucket tables)
    hot = list(range(0, 48)) + list(range(dir_off, dir_off + 1024)) + [
        b + i for b in sorted(set(entries))[:10] for i in range(104, 512)]
    rng = random.Random(1)
    for _ in range(300):
        d = bytearray(data)
        for _ in range(rng.choice([1, 2, 8])):
            d[rng.choice(hot)] ^= 1 << rng.randrange(8)
        _outcome(write(tmp_path, "f.db", bytes(d)))


def test_ascii_dump_damage(tmp_path):
    text = fixture_bytes("std.dump")
    want = expected("std.dump")
    lines = text.split(b"\n")
    end = lines.index(b"# End of data")
    for cut in list(range(1, end, 7)) + [end - 1]:
        part = b"\n".join(lines[:cut]) + b"\n"
        with pytest.raises(FormatError):
            list(G.read_dump(write(tmp_path, "t.dump", part)))
    # cutting only the final marker line keeps everything
    assert list(G.read_dump(write(tmp_path, "t.dump", b"\n".join(lines[:end]) + b"\n"))) == want
    bad = {
        "bad base64": text.replace(b"#:len=5\n", b"#:len=5\n!!!!\n", 1),
        "length mismatch": text.replace(b"#:len=5\n", b"#:len=6\n", 1),
        "huge length": text.replace(b"#:len=5\n", b"#:len=99999999999\n", 1),
        "count mismatch": text.replace(b"#:count=", b"#:count=1", 1),
        "data after end": text + b"more\n",
    }
    for why, content in bad.items():
        with pytest.raises(FormatError):
            list(G.read_dump(write(tmp_path, "b.dump", content)))
    assert b"#:len=5\n" in text


def test_binary_dump_truncated(tmp_path):
    """A cut inside a record is an error.  A cut exactly between records cannot be told
    from a shorter dump: the binary format has no count or end marker (a format limit)."""
    data = fixture_bytes("small512.bin")
    want = expected("small512.bin")
    boundaries = {}
    pos = len(data) - sum(16 + len(k) + len(v) for k, v in want)
    for i, (k, v) in enumerate(want):
        boundaries[pos] = i
        pos += 16 + len(k) + len(v)
    cuts = set(random.Random(3).sample(range(60, len(data)), 80)) | {len(data) - 1}
    cuts |= {b + d for b in list(boundaries)[1:40:7] for d in (-1, 1, 4, 8, 9)}
    for cut in sorted(cuts):
        path = write(tmp_path, "t.bin", data[:cut])
        try:
            got = list(G.read_dump(path))
        except FormatError:
            assert cut not in boundaries
            continue
        assert cut in boundaries and got == want[:boundaries[cut]], cut
    with pytest.raises(FormatError):
        list(G.read_dump(write(tmp_path, "g.bin", b"!\r\n! GDBM FLAT FILE DUMP -- THIS IS NOT A TEXT FILE\r\n!"
                                                     b" x\r\n!\r\n\xff\xff\xff\xff\0\0\0\0abc")))


def test_not_a_dump(tmp_path):
    for content in (b"", b"hello", b"\x00\x01"):
        with pytest.raises(FormatError):
            list(G.read_dump(write(tmp_path, "n.dump", content)))


# -- against the real software (tools) ------------------------------------------------------------

@needs_tools
def test_make_py_regenerates_fixtures_that_we_read(tmp_path):
    """Fresh files from make.py (Debian python3 + gdbm tools): our records == the C library's."""
    out = tmp_path / "fx"
    subprocess.run([DEBIAN_PY, os.path.join(FIX, "make.py"), str(out)], check=True)
    for name in DB_FIXTURES:
        if not (out / name).exists():
            continue
        with open(out / "expected" / (name + ".json")) as f:
            want = [(base64.b64decode(k), base64.b64decode(v)) for k, v in json.load(f)]
        assert read_all(out / name) == want, name
        assert want == expected(name), name  # the generator is deterministic
    assert list(G.read_dump(out / "std.dump")) == c_read(out / "std.db")
    assert list(G.read_dump(out / "small512.bin")) == c_read(out / "small512.db")


BIG_SCRIPT = r"""
import random
rng = random.Random(5)
for i in range(6000):
    db[b'rec-%d' % i] = bytes(rng.getrandbits(8) for _ in range(rng.choice([0, 3, 40, 300])))
for i in range(0, 6000, 3):
    del db[b'rec-%d' % i]
for i in range(0, 60):
    db[b'large-%d' % i] = bytes([i]) * (4096 * (1 + i % 3) + i)
db[b''] = b'empty key'
"""


@pytest.fixture(scope="module")
def big_db(tmp_path_factory):
    if not HAVE_C:
        pytest.skip("Debian python3 with dbm.gnu not available")
    path = tmp_path_factory.mktemp("big") / "big.db"
    c_write(path, BIG_SCRIPT)
    return path


@needs_c
def test_thousands_of_records_with_splits_deletions_and_large_values(big_db):
    got = read_all(big_db)
    want = c_read(big_db)
    assert got == want
    assert len(want) == 4000 + 60 + 1
    with G.GdbmFile(big_db) as db:
        info = db.info()
    assert info["bucket_count"] > 20 and info["record_count"] == len(want)


@needs_tools
def test_reorganized_and_numsync_copies(big_db, tmp_path):
    reorg = tmp_path / "reorg.db"
    shutil.copy(big_db, reorg)
    subprocess.run(["gdbmtool", "-q", str(reorg)], input=b"reorganize\n", check=True, capture_output=True)
    assert read_all(reorg) == c_read(reorg)
    ns = tmp_path / "ns.db"
    shutil.copy(big_db, ns)
    subprocess.run(["gdbmtool", "-q", str(ns)], input=b"upgrade\nstore x y\nsync\n", check=True, capture_output=True)
    with G.GdbmFile(ns) as db:
        assert db.info()["flavour"] == "numsync"
        assert list(db) == c_read(ns)


@needs_tools
def test_gdbm_dump_outputs_read_back(big_db, tmp_path):
    want = c_read(big_db)
    subprocess.run(["gdbm_dump", str(big_db), str(tmp_path / "a.dump")], check=True)
    assert list(G.read_dump(tmp_path / "a.dump")) == want
    # gdbm_dump cannot write a binary dump of a database with empty values: make one without
    nonempty = tmp_path / "ne.db"
    c_write(nonempty, "for i in range(3000):\n    db[b'k%d' % i] = b'v' * (1 + i % 50)")
    subprocess.run(["gdbm_dump", "-H", "binary", str(nonempty), str(tmp_path / "b.bin")], check=True)
    assert list(G.read_dump(tmp_path / "b.bin")) == c_read(nonempty)


def _gdbm_load(dump, db):
    r = subprocess.run(["gdbm_load", str(dump), str(db)], capture_output=True)
    assert r.returncode == 0, r.stderr.decode()


@needs_tools
def test_gdbm_load_accepts_our_ascii_dump(big_db, tmp_path):
    recs = c_read(big_db) + [(b"zero value", b""), (b"\x00", b"\x00")]
    # empty data first in the stream: the writer must hold them back
    recs.sort(key=lambda r: (len(r[0]) > 0 and len(r[1]) > 0, r))
    assert recs[0] == (b"", b"empty key") or not recs[0][1]
    dump = tmp_path / "ours.dump"
    with open(dump, "wb") as f:
        assert G.write_ascii_dump(f, recs, name="ours.db") == len(recs)
    _gdbm_load(dump, tmp_path / "ours.db")
    assert sorted(c_read(tmp_path / "ours.db")) == sorted(recs)
    assert sorted(G.read_dump(dump)) == sorted(recs)


@needs_tools
def test_gdbm_load_accepts_our_binary_dump(tmp_path):
    recs = [(b"k%d" % i, bytes([i % 256]) * (1 + i % 700)) for i in range(1500)] + [(b"\x00\xff", b"\n\r!")]
    dump = tmp_path / "ours.bin"
    with open(dump, "wb") as f:
        assert G.write_binary_dump(f, recs) == len(recs)
    _gdbm_load(dump, tmp_path / "ours.db")
    assert sorted(c_read(tmp_path / "ours.db")) == sorted(recs)


@needs_tools
def test_gdbm_load_rejects_what_our_writers_refuse(tmp_path):
    """The UnsupportedValueError cases are real limits of gdbm_load 1.23, not caution."""
    # a binary dump with an empty value, written by hand the way our writer would
    data = b"!\r\n! GDBM FLAT FILE DUMP -- THIS IS NOT A TEXT FILE\r\n! x\r\n!\r\n"
    data += (1).to_bytes(4, "big") + bytes(4) + b"k" + bytes(8)
    (tmp_path / "e.bin").write_bytes(data)
    assert subprocess.run(["gdbm_load", str(tmp_path / "e.bin"), str(tmp_path / "e.db")],
                          capture_output=True).returncode != 0
    # the ASCII form with only empty values, even with the blank-line trick
    text = ("# x\n#:version=1.1\n#:format=standard\n# End of header\n"
            "#:len=1\nYQ==\n#:len=0\n\n#:count=1\n# End of data\n")
    (tmp_path / "e.dump").write_text(text)
    assert subprocess.run(["gdbm_load", str(tmp_path / "e.dump"), str(tmp_path / "e2.db")],
                          capture_output=True).returncode != 0
    assert list(G.read_dump(tmp_path / "e.dump")) == [(b"a", b"")]


@needs_c
def test_ndbm_made_by_libgdbm_compat(tmp_path):
    if not (shutil.which("gcc") and os.path.exists("/usr/include/ndbm.h")):
        pytest.skip("gcc or libgdbm-compat-dev missing")
    exe = tmp_path / "ndbm_make"
    r = subprocess.run(["gcc", "-o", str(exe), os.path.join(FIX, "ndbm_make.c"), "-lgdbm_compat", "-lgdbm"],
                       capture_output=True)
    if r.returncode:
        pytest.skip("cannot link against libgdbm_compat: " + r.stderr.decode()[-200:])
    subprocess.run([str(exe), str(tmp_path / "nd"), "400"], check=True)
    pag = G.ndbm_pag_path(str(tmp_path / "nd"))
    assert pag == str(tmp_path / "nd.pag")
    assert read_all(pag) == c_read(pag)
    assert len(c_read(pag)) == 401
