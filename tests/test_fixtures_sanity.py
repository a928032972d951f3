"""Checks of the committed fixtures themselves (not of the project's readers).

1. Every file listed in tests/fixtures/README.md exists, and every file in
   the fixture folders is listed there.
2. Where the real software is installed, it still reads each fixture as
   tests/fixtures/expected.py says: Python 2.7 (pickle, shelve, dumbdbm),
   Python 3.13 (dbm.sqlite3, shelve, dbm.dumb), Debian's python3 (dbm.gnu,
   dbm.ndbm, bsddb3), and this interpreter's stdlib (pickle, sqlite3,
   dbm.dumb).  Each external interpreter runs once, on copies of the files,
   and reports what it read; a missing interpreter skips its tests.
"""
import binascii
import datetime
import decimal
import json
import os
import pickle
import re
import shutil
import sqlite3
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "fixtures")
ROOT = os.path.dirname(HERE)
sys.path.insert(0, FIX)
import expected as E  # noqa: E402

# The real interpreters (override with FIXTURE_PY2 / FIXTURE_PY313 /
# FIXTURE_DEBPY; a path that does not exist skips the tests needing it).
PY2 = os.environ.get("FIXTURE_PY2", "/root/.pyenv/versions/2.7.18/bin/python")
PY313 = os.environ.get("FIXTURE_PY313", "/root/.pyenv/versions/3.13.0/bin/python")
DEBPY = os.environ.get("FIXTURE_DEBPY", "/usr/bin/python3")
FIXTURE_DIRS = ("py2", "py313", "debian")


def fx(*parts):
    return os.path.join(FIX, *parts)


# ---------------------------------------------------------------------------
# README listing
# ---------------------------------------------------------------------------

def readme_files():
    """Paths (relative to tests/fixtures/) named in the README's tables."""
    with open(fx("README.md"), encoding="utf-8") as f:
        text = f.read()
    names = set()
    for line in text.splitlines():
        if line.startswith("|"):
            names.update(re.findall(r"`((?:py2|py313|debian)/[^`]+)`", line))
    return names


def test_readme_lists_every_fixture_and_each_exists():
    listed = readme_files()
    assert len(listed) >= 25, "README table not found or too short"
    missing = sorted(p for p in listed if not os.path.isfile(fx(p)))
    assert not missing, f"listed in README but missing: {missing}"
    on_disk = {f"{d}/{name}" for d in FIXTURE_DIRS for name in os.listdir(fx(d))}
    assert sorted(on_disk - listed) == [], "files not documented in README.md"


def test_fixtures_are_small_and_have_no_sqlite_sidecars():
    total = 0
    for d in FIXTURE_DIRS:
        for name in os.listdir(fx(d)):
            assert not name.endswith(("-wal", "-shm", "-journal")), name
            size = os.path.getsize(fx(d, name))
            assert size <= 20 * 1024, f"{d}/{name} is {size} bytes"
            total += size
    assert total < 1024 * 1024


# ---------------------------------------------------------------------------
# A canonical form to compare Python 2 values with Python 3 expectations
# ---------------------------------------------------------------------------

# Python 2 side: py2 str is text when it is valid UTF-8, else ["bytes", hex].
PY2_CANON = r'''
import datetime, decimal, json
def canon(o):
    if o is None: return ["none"]
    if isinstance(o, bool): return ["bool", o]
    if isinstance(o, (int, long)): return ["int", str(o)]
    if isinstance(o, float): return ["float", repr(o)]
    if isinstance(o, unicode): return ["str", o]
    if isinstance(o, str):
        try: return ["str", o.decode("utf-8")]
        except UnicodeDecodeError: return ["bytes", o.encode("hex")]
    if isinstance(o, tuple): return ["tuple", [canon(x) for x in o]]
    if isinstance(o, list): return ["list", [canon(x) for x in o]]
    if isinstance(o, dict): return ["dict", [[canon(k), canon(v)] for k, v in o.items()]]
    if isinstance(o, frozenset): return ["frozenset", [canon(x) for x in o]]
    if isinstance(o, set): return ["set", [canon(x) for x in o]]
    if isinstance(o, datetime.datetime): return ["datetime", o.isoformat()]
    if isinstance(o, datetime.date): return ["date", o.isoformat()]
    if isinstance(o, datetime.time): return ["time", o.isoformat()]
    if isinstance(o, decimal.Decimal): return ["decimal", str(o)]
    raise TypeError(type(o))
'''


def canon3(o):
    """The same canonical form for Python 3 values (see PY2_CANON)."""
    if o is None:
        return ["none"]
    if isinstance(o, bool):
        return ["bool", o]
    if isinstance(o, int):
        return ["int", str(o)]
    if isinstance(o, float):
        return ["float", repr(o)]
    if isinstance(o, str):
        return ["str", o]
    if isinstance(o, bytes):
        return ["bytes", o.hex()]
    if isinstance(o, tuple):
        return ["tuple", [canon3(x) for x in o]]
    if isinstance(o, list):
        return ["list", [canon3(x) for x in o]]
    if isinstance(o, dict):
        return ["dict", [[canon3(k), canon3(v)] for k, v in o.items()]]
    if isinstance(o, frozenset):
        return ["frozenset", [canon3(x) for x in o]]
    if isinstance(o, set):
        return ["set", [canon3(x) for x in o]]
    if isinstance(o, datetime.datetime):
        return ["datetime", o.isoformat()]
    if isinstance(o, datetime.date):
        return ["date", o.isoformat()]
    if isinstance(o, datetime.time):
        return ["time", o.isoformat()]
    if isinstance(o, decimal.Decimal):
        return ["decimal", str(o)]
    raise TypeError(type(o))


def norm(c):
    """Sort the unordered parts (dict items, set members) of a canonical form."""
    tag = c[0]
    if tag in ("tuple", "list"):
        return [tag, [norm(x) for x in c[1]]]
    if tag == "dict":
        pairs = [[norm(k), norm(v)] for k, v in c[1]]
        return [tag, sorted(pairs, key=json.dumps)]
    if tag in ("set", "frozenset"):
        return [tag, sorted((norm(x) for x in c[1]), key=json.dumps)]
    return c


def same(py2_canon, py3_value):
    return norm(py2_canon) == norm(canon3(py3_value))


def need(exe, *modules):
    if not os.access(exe, os.X_OK):
        pytest.skip(f"{exe} not installed")
    if modules:
        code = "import " + ", ".join(modules)
        if subprocess.run([exe, "-c", code], capture_output=True).returncode:
            pytest.skip(f"{exe} lacks {', '.join(modules)}")


def run(exe, code, workdir, stdin=b""):
    proc = subprocess.run([exe, "-c", code], cwd=workdir, input=stdin,
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc.stdout


def copy_dir(src, dst):
    shutil.copytree(src, dst)
    return dst


# ---------------------------------------------------------------------------
# Python 2.7 reads the py2 fixtures
# ---------------------------------------------------------------------------

PY2_READ = PY2_CANON + r'''
import cPickle, dumbdbm, shelve, sys
out = {}
for name in ("py2_proto0.pkl", "py2_proto1.pkl", "py2_proto2.pkl", "py2_latin1.pkl"):
    with open(name, "rb") as f:
        out[name] = canon(cPickle.load(f))
        out[name + ":rest"] = len(f.read())
objs = []
with open("py2_appended.pkl", "rb") as f:
    data = f.read()
import cStringIO
s = cStringIO.StringIO(data)
while s.tell() < len(data):
    objs.append(canon(cPickle.load(s)))
out["py2_appended.pkl"] = objs
for base in ("py2_dumbdbm_shelve", "py2_dumbdbm_shelve_p0"):
    raw = dumbdbm.open(base, "r")
    out[base + ":heads"] = sorted(set(raw[k][:2].encode("hex") for k in raw.keys()))
    out[base] = canon(dict(shelve.Shelf(raw)))  # closing the Shelf closes raw
raw = dumbdbm.open("py2_dumbdbm_raw", "r")
out["py2_dumbdbm_raw"] = dict((k.encode("hex"), raw[k].encode("hex")) for k in raw.keys())
raw.close()
sys.stdout.write(json.dumps(out))
'''


@pytest.fixture(scope="module")
def py2_read(tmp_path_factory):
    need(PY2)
    work = copy_dir(fx("py2"), str(tmp_path_factory.mktemp("py2") / "py2"))
    return json.loads(run(PY2, PY2_READ, work))


@pytest.mark.parametrize("name", sorted(E.PY2_PICKLE_PROTOCOLS))
def test_py2_pickles_load_in_python2_as_expected(py2_read, name):
    assert same(py2_read[name], E.PY2_VALUES)
    assert py2_read[name + ":rest"] == 0, "one pickle per file"


@pytest.mark.parametrize("name,proto", sorted(E.PY2_PICKLE_PROTOCOLS.items()))
def test_py2_pickle_protocols(name, proto):
    with open(fx("py2", name), "rb") as f:
        head = f.read(2)
    if proto >= 2:
        assert head == bytes([0x80, proto])
    else:
        # protocol 0 starts with MARK "(", protocol 1 with EMPTY_DICT "}"
        assert head[:1] == (b"(" if proto == 0 else b"}")


def test_py2_appended_objects(py2_read):
    got = py2_read["py2_appended.pkl"]
    assert len(got) == len(E.PY2_APPENDED_OBJECTS)
    for g, want in zip(got, E.PY2_APPENDED_OBJECTS):
        assert same(g, want)


def test_py2_appended_stream_order_and_merge():
    """The stdlib Python 3 unpickler keeps each dict in stream order."""
    objs, protos = [], []
    with open(fx("py2", "py2_appended.pkl"), "rb") as f:
        data = f.read()
    import io
    import pickletools
    stream = io.BytesIO(data)
    while stream.tell() < len(data):
        start = stream.tell()
        objs.append(pickle.load(stream))  # ASCII-only data: default encoding
        ops = list(pickletools.genops(data[start:stream.tell()]))
        protos.append(ops[0][1] if ops[0][0].name == "PROTO" else
                      (1 if any(op.proto >= 1 for op, _, _ in ops) else 0))
    assert objs == E.PY2_APPENDED_OBJECTS
    assert protos == E.PY2_APPENDED_PROTOCOLS
    records = [kv for o in objs if isinstance(o, dict) for kv in o.items()]
    assert records == E.PY2_APPENDED_RECORDS
    merged, overridden = {}, []
    for k, v in records:
        if k in merged:
            overridden.append(k)
        merged[k] = v
    assert merged == E.PY2_APPENDED_MERGED
    assert overridden == E.PY2_APPENDED_OVERRIDDEN
    assert [i for i, o in enumerate(objs) if not isinstance(o, dict)] == E.PY2_APPENDED_NON_DICT


def test_py2_latin1_pickle(py2_read):
    want = dict(E.PY2_LATIN1_VALUES_AS_LATIN1, word=E.PY2_LATIN1_RAW_WORD)
    assert same(py2_read["py2_latin1.pkl"], want)  # raw str is not UTF-8
    assert E.PY2_LATIN1_RAW_WORD.decode("latin-1") == E.PY2_LATIN1_VALUES_AS_LATIN1["word"]
    with pytest.raises(UnicodeDecodeError):
        E.PY2_LATIN1_RAW_WORD.decode("utf-8")


@pytest.mark.parametrize("base,proto", sorted(E.PY2_SHELVE_PROTOCOLS.items()))
def test_py2_dumbdbm_shelves(py2_read, base, proto):
    assert same(py2_read[base], E.PY2_SHELVE_VALUES)
    heads = py2_read[base + ":heads"]
    if proto == 2:
        assert heads == ["8002"]
    else:
        assert all(not h.startswith("80") for h in heads)


def test_py2_dumbdbm_raw_in_python2(py2_read):
    got = {binascii.unhexlify(k): binascii.unhexlify(v)
           for k, v in py2_read["py2_dumbdbm_raw"].items()}
    assert got == E.DBM_RAW_RECORDS
    assert not set(got) & set(E.DBM_RAW_DELETED)


def test_py2_dumbdbm_raw_in_python3_dbm_dumb(tmp_path):
    """Python 3's dbm.dumb reads Python 2's files too (keys via Latin-1)."""
    import dbm.dumb
    work = copy_dir(fx("py2"), str(tmp_path / "py2"))
    with dbm.dumb.open(os.path.join(work, "py2_dumbdbm_raw"), "r") as db:
        assert {k: db[k] for k in db.keys()} == E.DBM_RAW_RECORDS


# ---------------------------------------------------------------------------
# Python 3.13 reads the py313 fixtures
# ---------------------------------------------------------------------------

PY313_READ = r'''
import dbm, dbm.dumb, dbm.sqlite3, pickle, shelve, sys
out = {}
with dbm.sqlite3.open("dbm_sqlite3.sqlite", "r") as db:
    out["dbm_sqlite3"] = {k: db[k] for k in db.keys()}
with shelve.open("shelve_sqlite3.db", "r") as db:
    out["shelve_sqlite3"] = dict(db)
with dbm.dumb.open("dbm_dumb", "r") as db:
    out["dbm_dumb"] = {k: db[k] for k in db.keys()}
out["whichdb"] = [dbm.whichdb(p) for p in ("dbm_sqlite3.sqlite", "shelve_sqlite3.db", "dbm_dumb")]
sys.stdout.buffer.write(pickle.dumps(out, 4))
'''


@pytest.fixture(scope="module")
def py313_read(tmp_path_factory):
    need(PY313, "dbm.sqlite3")
    work = copy_dir(fx("py313"), str(tmp_path_factory.mktemp("p313") / "py313"))
    return pickle.loads(run(PY313, PY313_READ, work))


def test_py313_dbm_sqlite3(py313_read):
    assert py313_read["dbm_sqlite3"] == E.DBM_SQLITE3_RECORDS


def test_py313_shelve_sqlite3(py313_read):
    assert py313_read["shelve_sqlite3"] == E.PY3_SHELVE_VALUES


def test_py313_dbm_dumb(py313_read):
    assert py313_read["dbm_dumb"] == E.DBM_DUMB313_RECORDS


def test_py313_whichdb(py313_read):
    assert py313_read["whichdb"] == ["dbm.sqlite3", "dbm.sqlite3", "dbm.dumb"]


def ro_sqlite(path, tmp_path):
    copy = shutil.copy(path, tmp_path)
    return sqlite3.connect(f"file:{copy}?mode=ro", uri=True)


def test_dbm_sqlite3_layout_with_stdlib_sqlite3(tmp_path):
    cx = ro_sqlite(fx("py313", "dbm_sqlite3.sqlite"), tmp_path)
    tables = [r[0] for r in cx.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    assert tables == ["Dict"]
    rows = dict(cx.execute("SELECT key, value FROM Dict"))
    cx.close()
    assert rows == E.DBM_SQLITE3_RECORDS


def test_shelve_sqlite3_values_and_protocol(tmp_path):
    cx = ro_sqlite(fx("py313", "shelve_sqlite3.db"), tmp_path)
    rows = dict(cx.execute("SELECT key, value FROM Dict"))
    cx.close()
    assert {k.decode("utf-8"): pickle.loads(v) for k, v in rows.items()} == E.PY3_SHELVE_VALUES
    assert {v[:2] for v in rows.values()} == {bytes([0x80, E.PY313_SHELVE_PROTOCOL])}


def test_dbm_dumb_313_in_this_python(tmp_path):
    import dbm.dumb
    for ext in (".dat", ".dir"):
        shutil.copy(fx("py313", "dbm_dumb" + ext), tmp_path)
    with dbm.dumb.open(str(tmp_path / "dbm_dumb"), "r") as db:
        assert {k: db[k] for k in db.keys()} == E.DBM_DUMB313_RECORDS


def test_sqlite_people(tmp_path):
    cx = ro_sqlite(fx("py313", "sqlite_people.sqlite"), tmp_path)
    cols = [r[1] for r in cx.execute("PRAGMA table_info(people)")]
    rows = cx.execute("SELECT * FROM people ORDER BY rowid").fetchall()
    cx.close()
    assert cols == E.SQLITE_PEOPLE_COLUMNS
    assert rows == E.SQLITE_PEOPLE_ROWS


def test_sqlitedict_layout(tmp_path):
    cx = ro_sqlite(fx("py313", "sqlitedict_style.sqlite"), tmp_path)
    tables = [r[0] for r in cx.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    cols = [(r[1], r[2], r[5]) for r in cx.execute(f'PRAGMA table_info("{E.SQLITEDICT_TABLE}")')]
    rows = dict(cx.execute(f'SELECT key, value FROM "{E.SQLITEDICT_TABLE}"'))
    cx.close()
    assert tables == [E.SQLITEDICT_TABLE]
    assert cols == [("key", "TEXT", 1), ("value", "BLOB", 0)]
    assert {k: pickle.loads(v) for k, v in rows.items()} == E.SQLITEDICT_VALUES
    assert {v[:2] for v in rows.values()} == {bytes([0x80, E.SQLITEDICT_PROTOCOL])}


# ---------------------------------------------------------------------------
# Debian's C libraries read the debian fixtures
# ---------------------------------------------------------------------------

DEB_READ = r'''
import dbm, dbm.gnu, dbm.ndbm, pickle, shelve, sys
from bsddb3 import db as bdb
def bdb_items(path, dbtype):
    d = bdb.DB()
    d.open(path, dbtype=dbtype, flags=bdb.DB_RDONLY)
    try:
        return d.items()
    finally:
        d.close()
out = {}
with dbm.gnu.open("gdbm_small.gdbm", "r") as db:
    out["gdbm_small.gdbm"] = {k: db[k] for k in db.keys()}
for name in ("gdbm_shelve.gdbm", "gdbm_shelve_p2.gdbm"):
    with dbm.gnu.open(name, "r") as raw:
        out[name + ":heads"] = sorted({raw[k][:2] for k in raw.keys()})
        out[name] = dict(shelve.Shelf(raw))
with dbm.ndbm.open("ndbm_small", "r") as db:
    out["ndbm_small.db"] = {k: db[k] for k in db.keys()}
out["bdb_hash.db"] = dict(bdb_items("bdb_hash.db", bdb.DB_HASH))
out["bdb_btree.db"] = bdb_items("bdb_btree.db", bdb.DB_BTREE)
out["py2style_dbhash_shelve.db"] = dict(bdb_items("py2style_dbhash_shelve.db", bdb.DB_HASH))
out["whichdb"] = [dbm.whichdb(p) for p in ("gdbm_small.gdbm", "ndbm_small")]
sys.stdout.buffer.write(pickle.dumps(out, 4))
'''


@pytest.fixture(scope="module")
def deb_read(tmp_path_factory):
    need(DEBPY, "dbm.gnu", "dbm.ndbm", "bsddb3")
    work = copy_dir(fx("debian"), str(tmp_path_factory.mktemp("deb") / "debian"))
    return pickle.loads(run(DEBPY, DEB_READ, work))


def test_gdbm_small(deb_read):
    assert deb_read["gdbm_small.gdbm"] == E.GDBM_RECORDS
    assert b"" in deb_read["gdbm_small.gdbm"].values()


@pytest.mark.parametrize("name,proto", sorted(E.GDBM_SHELVE_PROTOCOLS.items()))
def test_gdbm_shelves(deb_read, name, proto):
    assert deb_read[name] == E.PY3_SHELVE_VALUES
    assert deb_read[name + ":heads"] == [bytes([0x80, proto])]


def test_ndbm_is_berkeley_db_hash(deb_read):
    assert deb_read["ndbm_small.db"] == E.NDBM_RECORDS
    assert deb_read["whichdb"] == ["dbm.gnu", "dbm.ndbm"]
    with open(fx("debian", "ndbm_small.db"), "rb") as f:
        head = f.read(16)
    assert int.from_bytes(head[12:16], "little") == 0x061561  # hash magic


def test_bdb_hash(deb_read):
    assert deb_read["bdb_hash.db"] == E.BDB_HASH_RECORDS


def test_bdb_btree_in_key_order(deb_read):
    assert deb_read["bdb_btree.db"] == E.BDB_BTREE_RECORDS


def test_py2style_dbhash_shelve_raw_and_protocols(deb_read):
    raw = deb_read["py2style_dbhash_shelve.db"]
    assert {k.decode("utf-8") for k in raw} == set(E.PY2_DBHASH_SHELVE_VALUES)
    for key, data in raw.items():
        proto = E.PY2_DBHASH_SHELVE_PROTOCOLS[key.decode("utf-8")]
        if proto == 2:
            assert data[:2] == b"\x80\x02", key
        else:
            assert data[:1] != b"\x80", key


def test_py2style_dbhash_shelve_values_in_python2(deb_read):
    """Python 2.7 unpickles the stored bytes to PY2_VALUES."""
    need(PY2)
    raw = deb_read["py2style_dbhash_shelve.db"]
    payload = json.dumps({k.hex(): v.hex() for k, v in raw.items()}).encode()
    code = PY2_CANON + r'''
import cPickle, sys
rows = json.loads(sys.stdin.read())
out = dict((k.decode("hex").decode("utf-8"), cPickle.loads(v.decode("hex")))
           for k, v in rows.items())
sys.stdout.write(json.dumps(canon(out)))
'''
    got = json.loads(run(PY2, code, FIX, stdin=payload))
    assert same(got, E.PY2_DBHASH_SHELVE_VALUES)


def test_bdb_layout_facts():
    """Page sizes and magics the README states."""
    def meta(name):
        with open(fx("debian", name), "rb") as f:
            head = f.read(24)
        return (int.from_bytes(head[12:16], "little"),
                int.from_bytes(head[16:20], "little"),
                int.from_bytes(head[20:24], "little"))
    assert meta("bdb_hash.db") == (0x061561, 9, 512)
    assert meta("bdb_btree.db") == (0x053162, 9, 512)
    assert meta("py2style_dbhash_shelve.db") == (0x061561, 9, 4096)


# ---------------------------------------------------------------------------
# examples/people.pkl
# ---------------------------------------------------------------------------

def test_example_people_pkl():
    with open(os.path.join(ROOT, "examples", "people.pkl"), "rb") as f:
        data = f.read()
    assert data[:2] == bytes([0x80, E.PEOPLE_PKL_PROTOCOL])
    import io
    stream = io.BytesIO(data)
    assert pickle.load(stream) == E.PEOPLE_PKL_VALUE
    assert stream.tell() == len(data), "exactly one pickle"
