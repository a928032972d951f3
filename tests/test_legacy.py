"""Legacy dbm data on an interpreter without _gdbm, _dbm or bsddb: detected automatically,
converted with every record as the C libraries read it (the expected files were written by
the C libraries; see tests/fixtures/*/make.py)."""

import base64
import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import expected as E
from converter import Options, read_records
from converter.cli import app
from converter.testing import assert_same

FIX = Path(__file__).parent / "fixtures"
runner = CliRunner()
DEBIAN_PY = "/usr/bin/python3"


def cli(*args):
    r = runner.invoke(app, [str(a) for a in args])
    assert r.exit_code == 0, r.output
    return r


def gdbm_expected(name):
    pairs = json.loads((FIX / "gdbm" / "expected" / f"{name}.json").read_text())
    return [(base64.b64decode(k), base64.b64decode(v)) for k, v in pairs]


def bdb_expected(name):
    data = json.load(gzip.open(FIX / "bdb" / "expected.json.gz"))
    return [(bytes.fromhex(k), bytes.fromhex(v)) for k, v in data[name]]


RAW = ("--key-codec", "raw", "--value-codec", "raw")


def convert_raw(tmp_path, src, fmt="jsonl", *extra):
    out = tmp_path / f"out.{fmt}"
    cli(src, out, *RAW, *extra)
    return list(read_records(out))


def test_the_default_python_really_lacks_the_c_modules():
    # the point of these tests: nothing here may lean on the C bindings
    import importlib.util

    if sys.version_info[:2] == (3, 11) and "pyenv" in sys.executable:
        assert importlib.util.find_spec("_gdbm") is None and importlib.util.find_spec("_dbm") is None
    assert importlib.util.find_spec("bsddb") is None


@pytest.mark.parametrize("name", ["std.db", "reorg.db", "small512.db", "numsync.db", "empty.db"])
def test_gdbm_files_to_jsonl(tmp_path, name):
    src = shutil.copy(FIX / "gdbm" / name, tmp_path / "legacy.gdbm")
    assert convert_raw(tmp_path, src) == gdbm_expected(name)


def test_gdbm_compat_ndbm_pair(tmp_path):
    for suffix in (".dir", ".pag"):
        shutil.copy(FIX / "gdbm" / f"compat{suffix}", tmp_path / f"legacy{suffix}")
    assert convert_raw(tmp_path, tmp_path / "legacy") == gdbm_expected("compat.pag")


@pytest.mark.parametrize("name", ["hash.db", "hash_v5.db", "hash_v6.db", "hash_v7.db", "hash_v8.db", "hash185.db",
                                  "btree_v6.db", "btree_v7.db", "btree_v8.db", "btree_be_chksum.db", "ndbm.db"])
def test_berkeley_db_files_to_jsonl(tmp_path, name):
    src = shutil.copy(FIX / "bdb" / name, tmp_path / "legacy.db")
    got, want = convert_raw(tmp_path, src), bdb_expected(name)
    if name in ("hash_v5.db", "hash_v6.db", "hash_v7.db", "hash_v8.db"):
        # unsorted hash pages: the expected list is what bsddb3 read after db5.3_upgrade
        # re-sorted them, so only the multiset of records can match
        got, want = sorted(got), sorted(want)
    assert got == want


def test_berkeley_db_subdatabase_is_selected(tmp_path):
    src = shutil.copy(FIX / "bdb" / "multi.db", tmp_path / "multi.db")
    r = runner.invoke(app, [str(src), str(tmp_path / "o.jsonl")])
    assert r.exit_code == 1 and "alpha" in r.stderr and "beta" in r.stderr
    assert convert_raw(tmp_path, src, "jsonl", "--database", "beta") == bdb_expected("multi.db:beta")


def test_legacy_db_to_sqlite(tmp_path):
    # `convert legacy.db out.sqlite` on Debian's dbm.ndbm file (Berkeley DB hash)
    src = shutil.copy(FIX / "debian" / "ndbm_small.db", tmp_path / "legacy.db")
    cli(src, tmp_path / "out.sqlite", *RAW)
    assert dict(read_records(tmp_path / "out.sqlite")) == E.NDBM_RECORDS


def test_legacy_gdbm_to_json(tmp_path):
    src = shutil.copy(FIX / "debian" / "gdbm_small.gdbm", tmp_path / "legacy.gdbm")
    cli(src, tmp_path / "out.json", *RAW)
    assert dict(read_records(tmp_path / "out.json")) == E.GDBM_RECORDS


def test_python2_dbhash_shelve_to_json(tmp_path):
    src = shutil.copy(FIX / "debian" / "py2style_dbhash_shelve.db", tmp_path / "py2shelf.db")
    r = cli(src, tmp_path / "out.json")
    assert "values read as pickle" in r.stderr
    assert_same(dict(read_records(tmp_path / "out.json")), E.PY2_DBHASH_SHELVE_VALUES)


@pytest.mark.parametrize("name", ["gdbm_shelve.gdbm", "gdbm_shelve_p2.gdbm"])
def test_python3_gdbm_shelves(tmp_path, name):
    src = shutil.copy(FIX / "debian" / name, tmp_path / name)
    cli(src, tmp_path / "out.json")
    assert_same(dict(read_records(tmp_path / "out.json")), E.PY3_SHELVE_VALUES)


@pytest.mark.parametrize("name, fmt", [("std.dump", "gdbm-dump"), ("small512.bin", "gdbm-dump")])
def test_gdbm_dumps_are_detected(tmp_path, name, fmt):
    src = shutil.copy(FIX / "gdbm" / name, tmp_path / name)
    r = cli("identify", src)
    assert f": {fmt} (" in r.stdout
    want = gdbm_expected("std.db" if name == "std.dump" else "small512.db")
    assert sorted(convert_raw(tmp_path, src)) == sorted(want)


def test_db_dump_text_round_trip(tmp_path):
    src = shutil.copy(FIX / "bdb" / "dump_bytevalue.txt", tmp_path / "d.txt")
    records = convert_raw(tmp_path, src)
    cli(tmp_path / "out.jsonl", tmp_path / "again.dbdump", *RAW)
    assert list(read_records(tmp_path / "again.dbdump", options=Options(key_codec="raw", value_codec="raw"))) == records


# -- live files from the real C libraries, when this machine has them ----------------------------

def _debian_python_with(module):
    if not Path(DEBIAN_PY).exists():
        pytest.skip("no Debian python3")
    ok = subprocess.run([DEBIAN_PY, "-c", f"import {module}"], capture_output=True).returncode == 0
    if not ok:
        pytest.skip(f"Debian python3 has no {module}")


MAKE_AND_READ = r'''
import pickle, sys
kind, path = sys.argv[1], sys.argv[2]
records = {b"k%05d" % i: (b"v%d " % i) * (i % 50) for i in range(4000)}
records[b"big"] = bytes(range(256)) * 40
if kind == "gdbm":
    import dbm.gnu as g
    db = g.open(path, "n")
    for k, v in records.items(): db[k] = v
    for i in range(0, 4000, 7): del db[b"k%05d" % i]
    db.close()
    db = g.open(path, "r"); k = db.firstkey(); out = []
    while k is not None: out.append((k, db[k])); k = db.nextkey(k)
else:
    from bsddb3 import db as bdb
    d = bdb.DB(); d.set_pagesize(512); d.open(path, dbtype=bdb.DB_HASH, flags=bdb.DB_CREATE)
    for k, v in records.items(): d.put(k, v)
    for i in range(0, 4000, 7): d.delete(b"k%05d" % i)
    d.close()
    d = bdb.DB(); d.open(path, flags=bdb.DB_RDONLY); c = d.cursor(); out = []; r = c.first()
    while r: out.append(r); r = c.next()
sys.stdout.buffer.write(pickle.dumps(out))
'''


@pytest.mark.parametrize("kind, module, name", [("gdbm", "dbm.gnu", "live.gdbm"), ("bdb", "bsddb3", "live.db")])
def test_live_files_match_the_c_library(tmp_path, kind, module, name):
    import pickle

    _debian_python_with(module)
    path = tmp_path / name
    p = subprocess.run([DEBIAN_PY, "-c", MAKE_AND_READ, kind, str(path)], capture_output=True, check=True)
    c_records = pickle.loads(p.stdout)
    assert len(c_records) > 3000
    assert convert_raw(tmp_path, path) == c_records
