"""Files made by the real software (tests/fixtures) read back as the right Python 3 values."""

import hashlib
import pickle

import pytest

import expected as E
from converter import Options, convert, read_records
from converter.errors import FormatError
from converter.testing import assert_same


def records(path, **opts):
    return list(read_records(path, options=Options(**opts)))


@pytest.mark.parametrize("name", ["py2_proto0.pkl", "py2_proto1.pkl", "py2_proto2.pkl"])
def test_python2_pickles(fixtures, name):
    assert_same(dict(records(fixtures / "py2" / name)), E.PY2_VALUES)


def test_python2_appended_pickles_are_merged_and_overrides_counted(fixtures):
    opts = Options()
    got = list(read_records(fixtures / "py2" / "py2_appended.pkl", options=opts))
    merged = dict(E.PY2_APPENDED_MERGED)
    merged[E.PY2_APPENDED_NON_DICT[0]] = E.PY2_APPENDED_OBJECTS[E.PY2_APPENDED_NON_DICT[0]]
    assert_same(dict(got), merged)
    assert any("3 pickles merged; 1 key(s) overridden" in n for n in opts.notes), opts.notes


def test_python2_non_utf8_string_is_refused_then_accepted(fixtures):
    path = fixtures / "py2" / "py2_latin1.pkl"
    with pytest.raises(FormatError, match="--py2-strings"):
        records(path)
    assert_same(dict(records(path, py2_strings="latin1")), E.PY2_LATIN1_VALUES_AS_LATIN1)
    assert dict(records(path, py2_strings="bytes"))[b"word"] == E.PY2_LATIN1_RAW_WORD


@pytest.mark.parametrize("base", ["py2_dumbdbm_shelve", "py2_dumbdbm_shelve_p0"])
def test_python2_dumbdbm_shelves(fixtures, base):
    # detected as dbm.dumb from the bare base name, values detected as pickles
    opts = Options()
    got = dict(read_records(fixtures / "py2" / base, options=opts))
    assert_same(got, E.PY2_SHELVE_VALUES)
    assert any("values read as pickle" in n for n in opts.notes)
    # and the same through the shelve format by name
    assert_same(dict(read_records(fixtures / "py2" / f"{base}.dat", from_="shelve")), E.PY2_SHELVE_VALUES)


def test_python2_raw_dumbdbm_bytes(fixtures):
    got = dict(records(fixtures / "py2" / "py2_dumbdbm_raw", key_codec="raw", value_codec="raw"))
    assert got == E.DBM_RAW_RECORDS


def test_python313_dbm_sqlite3(fixtures):
    got = dict(records(fixtures / "py313" / "dbm_sqlite3.sqlite", key_codec="raw", value_codec="raw"))
    assert got == E.DBM_SQLITE3_RECORDS


def test_python313_shelve_on_dbm_sqlite3(fixtures):
    assert_same(dict(records(fixtures / "py313" / "shelve_sqlite3.db")), E.PY3_SHELVE_VALUES)


def test_python313_dbm_dumb(fixtures):
    got = dict(records(fixtures / "py313" / "dbm_dumb", key_codec="raw", value_codec="raw"))
    assert got == E.DBM_DUMB313_RECORDS


def test_sqlitedict_values_are_unpickled_safely(fixtures):
    assert_same(dict(records(fixtures / "py313" / "sqlitedict_style.sqlite")), E.SQLITEDICT_VALUES)


def test_ordinary_sqlite_table(fixtures):
    got = records(fixtures / "py313" / "sqlite_people.sqlite")
    assert got == [(row[0], dict(zip(E.SQLITE_PEOPLE_COLUMNS, row))) for row in E.SQLITE_PEOPLE_ROWS]


def _snapshot(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.mark.parametrize("rel", [
    "py2/py2_proto0.pkl", "py2/py2_dumbdbm_shelve", "py313/dbm_sqlite3.sqlite", "py313/shelve_sqlite3.db",
    "py313/sqlitedict_style.sqlite", "py313/sqlite_people.sqlite", "py313/dbm_dumb",
])
def test_inputs_are_never_modified(copy_fixture, tmp_path, rel):
    src = copy_fixture(rel)
    before = _snapshot(tmp_path)
    out = tmp_path / "out" / "x.jsonl"
    out.parent.mkdir()
    convert(src, out)
    assert _snapshot(tmp_path / "out").keys() == {"x.jsonl"}
    after = {k: v for k, v in _snapshot(tmp_path).items()}
    assert after == before, "input changed or files (-wal, -shm, .bak) appeared beside it"


def test_dbm_sqlite3_with_a_wal_is_read_from_a_copy(tmp_path):
    import sqlite3

    db = tmp_path / "live.sqlite"
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("CREATE TABLE Dict (key BLOB UNIQUE NOT NULL, value BLOB NOT NULL)")
    con.execute("INSERT INTO Dict VALUES (CAST('k' AS BLOB), CAST('v' AS BLOB))")
    con.commit()
    # keep the connection open so the row lives only in the -wal file
    before = _snapshot(tmp_path)
    assert records(db) == [("k", "v")]
    assert _snapshot(tmp_path) == before
    con.close()
