"""Every pair of the everyday formats carries the tricky-value corpus losslessly, or refuses loudly."""

import itertools
import os
import subprocess
import sys
import pickle

import pytest

from converter import convert
from converter.errors import ConverterError, UnsupportedValueError
from converter.testing import TRICKY, TRICKY_WITH_BINARY_KEY, assert_same, roundtrip

FORMATS = ["pickle", "json", "jsonl", "shelve", "dbm.dumb", "dbm.sqlite3", "sqlite"]


@pytest.mark.parametrize("a,b", list(itertools.product(FORMATS, FORMATS)))
def test_pair_round_trips_the_corpus(tmp_path, a, b):
    data = TRICKY if "shelve" in (a, b) else TRICKY_WITH_BINARY_KEY
    assert_same(roundtrip(tmp_path, data, [a, b]), data)


def test_shelve_refuses_a_binary_key_loudly(tmp_path):
    with pytest.raises(UnsupportedValueError, match="binary"):
        roundtrip(tmp_path, TRICKY_WITH_BINARY_KEY, ["shelve"])
    assert not any(p.name.startswith("step0") for p in tmp_path.iterdir())


@pytest.mark.parametrize("fmt", ["dbm.dumb", "dbm.sqlite3"])
def test_text_values_are_stored_as_utf8_and_read_back_as_text(tmp_path, fmt):
    data = {"a": "text", "b": "ünïcode"}
    assert_same(roundtrip(tmp_path, data, [fmt]), data)


@pytest.mark.parametrize("fmt", ["dbm.dumb", "dbm.sqlite3"])
def test_a_later_value_the_first_codec_cannot_hold_restarts_with_one_that_fits_all(tmp_path, fmt):
    # the first records (all text) choose utf8; the dict after them must neither stop the
    # conversion nor be stored as something else: the conversion is redone with pickle
    data = {f"k{i}": f"v{i}" for i in range(150)}
    data["late"] = {"not": "text"}
    assert_same(roundtrip(tmp_path, data, [fmt]), data)


def test_a_later_value_that_does_not_fit_from_stdin_is_refused_naming_it(tmp_path):
    data = {f"k{i}": f"v{i}" for i in range(150)}
    data["late"] = {"not": "text"}
    r = subprocess.run([sys.executable, "-m", "converter", "-", str(tmp_path / "out"), "--from", "pickle",
                        "--to", "dbm.dumb"], input=pickle.dumps(data), capture_output=True,
                       env={**os.environ, "CONVERTER_LOAD_PLUGINS": ""})
    assert r.returncode == 1, r.stderr
    assert b"'late'" in r.stderr and b"--value-codec" in r.stderr and b"Traceback" not in r.stderr
    assert not list(tmp_path.iterdir())


def test_json_object_restarts_as_pairs_for_a_late_non_string_key(tmp_path):
    # the first 1,000 keys (str) choose an object; the int key after them makes the
    # conversion start again as {"$records": [[key, value], ...]}, which holds any key
    data = {f"k{i}": i for i in range(1500)}
    data[7] = "int key after 1500 str keys"
    assert_same(roundtrip(tmp_path, data, ["json"]), data)


def test_plain_json_reports_every_change(tmp_path):
    src = tmp_path / "in.pkl"
    src.write_bytes(pickle.dumps({"b": b"bytes", "t": (1, 2), "ok": 1}))
    result = convert(src, tmp_path / "out.json", json_style="plain")
    assert (tmp_path / "out.json").read_text().count("$") == 0
    assert any("bytes" in n and "tuple" in n for n in result.notes), result.notes


def test_sqlite_table_layout_reports_added_key_column(tmp_path):
    data = {"a": {"x": 1}, "b": {"x": 2, "y": "new field"}}
    src = tmp_path / "in.pkl"
    src.write_bytes(pickle.dumps(data))
    result = convert(src, tmp_path / "out.sqlite")
    notes = " ".join(result.notes)
    assert "added column 'key'" in notes and "read back as None" in notes
    back = dict(convert_back(tmp_path / "out.sqlite"))
    assert back == {"a": {"key": "a", "x": 1, "y": None}, "b": {"key": "b", "x": 2, "y": "new field"}}


def convert_back(path):
    from converter import read_records

    return read_records(path)


def test_sqlite_table_refuses_a_value_that_does_not_fit_its_column(tmp_path):
    src = tmp_path / "in.pkl"
    src.write_bytes(pickle.dumps({"a": {"pay": 1}, "b": {"pay": "a lot"}}))
    with pytest.raises(UnsupportedValueError, match="'pay'.*str.*INTEGER"):
        convert(src, tmp_path / "out.sqlite", layout="table")
    assert list(tmp_path.iterdir()) == [src]


def test_a_forged_deque_longer_than_its_maxlen_is_refused_not_cut(tmp_path):
    """Values never change on the way: a tag payload that breaks its documented shape is an error."""
    (tmp_path / "d.json").write_text('{"q": {"$deque": {"items": [1, 2, 3], "maxlen": 2}}}')
    r = subprocess.run([sys.executable, "-m", "converter", str(tmp_path / "d.json"), str(tmp_path / "out.pkl")],
                       capture_output=True, text=True, env={**os.environ, "CONVERTER_LOAD_PLUGINS": ""})
    assert r.returncode == 1 and "maxlen" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out.pkl").exists()


def test_an_ordereddict_with_attributes_is_refused_by_json_not_dropped(tmp_path):
    """A pickle's BUILD can give an OrderedDict instance attributes, which JSON tags cannot hold."""
    py = "/root/.pyenv/versions/3.13.0/bin/python"
    src = tmp_path / "od.pkl"
    maker = ("import collections, pickle, sys\nod = collections.OrderedDict(a=1)\nod.note = 'kept?'\n"
             "open(sys.argv[1], 'wb').write(pickle.dumps({'rec': od}, protocol=2))")
    subprocess.run([py if os.path.exists(py) else sys.executable, "-c", maker, str(src)], check=True)
    env = {**os.environ, "CONVERTER_LOAD_PLUGINS": ""}
    r = subprocess.run([sys.executable, "-m", "converter", str(src), str(tmp_path / "out.json")],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 1 and "instance attributes (note)" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out.json").exists()
    r = subprocess.run([sys.executable, "-m", "converter", str(src), str(tmp_path / "out.pkl")],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr  # pickle holds them
    assert pickle.loads((tmp_path / "out.pkl").read_bytes())["rec"].__dict__ == {"note": "kept?"}
