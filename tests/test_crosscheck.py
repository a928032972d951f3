"""What this tool writes, read back by the real software: Python 3.13's dbm.sqlite3 and
shelve, Python 2.7's pickle and dumbdbm."""

import json
import pickle
import subprocess
from pathlib import Path

import pytest

from converter import convert

PY313 = Path("/root/.pyenv/versions/3.13.0/bin/python")
PY27 = Path("/root/.pyenv/versions/2.7.18/bin/python")
DATA = {"Omkar": {"key": "Omkar", "name": "Omkar Pathak", "age": 21, "pay": 40000}, "ünï": [1, 2.5, None]}


def need(py):
    if not py.exists():
        pytest.skip(f"{py} is not installed")


def _src(tmp_path):
    src = tmp_path / "in.pkl"
    src.write_bytes(pickle.dumps(DATA))
    return src


def test_python313_reads_our_shelve_on_dbm_sqlite3(tmp_path):
    need(PY313)
    out = tmp_path / "shelf.db"
    convert(_src(tmp_path), out, to="shelve", dbm="dbm.sqlite3")
    code = ("import dbm, shelve, json, sys; assert dbm.whichdb(sys.argv[1]) == 'dbm.sqlite3'; "
            "s = shelve.open(sys.argv[1], 'r'); print(json.dumps(dict(s))); s.close()")
    p = subprocess.run([str(PY313), "-c", code, str(out)], capture_output=True, text=True, check=True)
    assert json.loads(p.stdout) == DATA


def test_python313_reads_our_dbm_sqlite3(tmp_path):
    need(PY313)
    src = tmp_path / "in.json"
    src.write_text(json.dumps({"a": "text", "b": "ünïcode"}))
    out = tmp_path / "out.sqlite"
    convert(src, out, to="dbm.sqlite3")
    code = ("import dbm.sqlite3, sys; d = dbm.sqlite3.open(sys.argv[1], 'r'); "
            "print(sorted((k.decode(), d[k].decode()) for k in d.keys())); d.close()")
    p = subprocess.run([str(PY313), "-c", code, str(out)], capture_output=True, text=True, check=True)
    assert p.stdout.strip() == "[('a', 'text'), ('b', 'ünïcode')]"


@pytest.mark.parametrize("protocol", [0, 1, 2])
def test_python27_reads_our_pickles(tmp_path, protocol):
    need(PY27)
    out = tmp_path / "out.pkl"
    convert(_src(tmp_path), out, pickle_protocol=protocol)
    code = ("import pickle, sys; d = pickle.load(open(sys.argv[1], 'rb')); "
            "print(repr(sorted((k.encode('utf-8'), repr(v)) for k, v in d.items())))")
    p = subprocess.run([str(PY27), "-c", code, str(out)], capture_output=True, text=True, check=True)
    assert "Omkar Pathak" in p.stdout and "\\xc3\\xbcn\\xc3\\xaf" in p.stdout and "2.5" in p.stdout


def test_python27_reads_our_dumbdbm_shelve(tmp_path):
    need(PY27)
    out = tmp_path / "shelf"
    convert(_src(tmp_path), out, to="shelve", dbm="dbm.dumb", pickle_protocol=2)
    code = ("import shelve, dumbdbm, sys; s = shelve.Shelf(dumbdbm.open(sys.argv[1], 'r')); "
            "sys.stdout.write('%s %d %d' % (s['Omkar']['name'], s['Omkar']['age'], len(s)))")
    p = subprocess.run([str(PY27), "-c", code, str(out)], capture_output=True, text=True, check=True)
    assert p.stdout.split() == ["Omkar", "Pathak", "21", "2"]
