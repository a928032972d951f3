"""SQLite table output as sqlite-utils users expect it, through the real command line: --pk FIELD,
positional sources with a `key` field of their own, int/float columns, dates, and the fall back
to the key/value layout said out loud; and a SQLite input cut short (read by SQLite as zeros) is an
error, while healthy ones (free pages, trailing bytes, a stale header size, a live WAL) read exactly."""

import datetime
import json
import os
import pickle
import sqlite3
import subprocess
import sys

ENV = {**os.environ, "CONVERTER_LOAD_PLUGINS": ""}


def convert(*args):
    return subprocess.run([sys.executable, "-m", "converter", *map(str, args)], capture_output=True, text=True,
                          env=ENV, timeout=120)


def rows(path, sql):
    con = sqlite3.connect(path)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


PEOPLE = [{"id": 7, "key": "ann", "pay": 1}, {"id": 9, "key": "bob", "pay": 2.5}, {"id": 3, "key": "cy", "pay": 3}]


def test_a_json_array_with_a_key_field_makes_a_rowid_table_and_reads_back_exactly(tmp_path):
    src, out, back = tmp_path / "people.json", tmp_path / "people.sqlite", tmp_path / "back.json"
    src.write_text(json.dumps(PEOPLE))
    r = convert(src, out, "--verify")
    assert r.returncode == 0, r.stderr
    assert "verified: 3 record(s)" in r.stderr and "'key' field of their own" in r.stderr
    assert rows(out, "SELECT rowid, id, key, pay, typeof(pay) FROM people ORDER BY rowid") == [
        (0, 7, "ann", 1, "integer"), (1, 9, "bob", 2.5, "real"), (2, 3, "cy", 3, "integer")]
    assert convert(out, back).returncode == 0
    assert json.loads(back.read_text()) == PEOPLE  # ints stay ints, floats floats


def test_pk_field_promotes_an_existing_field_and_reports_the_keys_it_replaced(tmp_path):
    src, out = tmp_path / "people.json", tmp_path / "people.sqlite"
    src.write_text(json.dumps(PEOPLE))
    r = convert(src, out, "--pk", "id")
    assert r.returncode == 0, r.stderr
    assert "3 record key(s) replaced by field 'id' (the first: 0 -> 7)" in r.stderr
    schema = rows(out, "SELECT sql FROM sqlite_master WHERE name = 'people'")[0][0]
    assert '"id" INTEGER PRIMARY KEY' in schema
    assert rows(out, "SELECT id, key FROM people ORDER BY id") == [(3, "cy"), (7, "ann"), (9, "bob")]
    # sqlite-utils users' JSON Lines too, and a repeated id is refused, never merged
    lines = tmp_path / "people.jsonl"
    lines.write_text("".join(json.dumps(p) + "\n" for p in PEOPLE + [{"id": 7, "key": "again"}]))
    r = convert(lines, tmp_path / "dup.sqlite", "--pk", "id")
    assert r.returncode == 1 and "two records have the same id value" in r.stderr
    assert not (tmp_path / "dup.sqlite").exists()
    r = convert(src, tmp_path / "none.sqlite", "--pk", "email")
    assert r.returncode == 1 and "has no field 'email' for --pk email" in r.stderr


def test_int_and_float_in_one_column_read_back_exactly_both_ways(tmp_path):
    data = {f"k{i}": {"n": i, "x": float(i)} for i in range(2500)}  # the fast path runs first
    data["k2500"] = {"n": 2.0, "x": 3}  # an INTEGER column meets 2.0, a REAL one meets 3
    src, out, back = tmp_path / "in.pkl", tmp_path / "out.sqlite", tmp_path / "back.pkl"
    src.write_bytes(pickle.dumps(data))
    r = convert(src, out)
    assert r.returncode == 0, r.stderr
    assert "column 'n' holds both ints and floats" in r.stderr and "column 'x'" in r.stderr
    assert convert(out, back).returncode == 0
    with open(back, "rb") as f:
        got = pickle.load(f)
    assert {k: (v["n"], type(v["n"]), v["x"], type(v["x"])) for k, v in got.items()} == \
        {k: (v["n"], type(v["n"]), v["x"], type(v["x"])) for k, v in data.items()}


def test_dates_become_iso_columns_that_sqlite_date_functions_read_and_that_read_back(tmp_path):
    utc2 = datetime.timezone(datetime.timedelta(hours=2))
    data = {"a": {"when": datetime.datetime(2024, 5, 1, 10, 30, 0, 123456), "day": datetime.date(2024, 5, 1),
                  "at": datetime.time(10, 30), "zoned": datetime.datetime(2024, 5, 1, 3, tzinfo=utc2)},
            "b": {"when": datetime.datetime(2023, 1, 2), "day": datetime.date(2023, 1, 2),
                  "at": datetime.time(0, 0, 1), "zoned": datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)}}
    src, out, back = tmp_path / "in.pkl", tmp_path / "out.sqlite", tmp_path / "back.pkl"
    src.write_bytes(pickle.dumps(data))
    r = convert(src, out)
    assert r.returncode == 0, r.stderr
    assert "table layout" in r.stderr  # not a silent switch to key/value
    schema = rows(out, "SELECT sql FROM sqlite_master WHERE name = 'out'")[0][0]
    assert '"when" DATETIME' in schema and '"day" DATE' in schema and '"at" TIME' in schema
    assert rows(out, "SELECT date(\"when\"), datetime(zoned), time(at) FROM out ORDER BY key") == [
        ("2024-05-01", "2024-05-01 01:00:00", "10:30:00"), ("2023-01-02", "2024-01-01 00:00:00", "00:00:01")]
    assert convert(out, back).returncode == 0
    with open(back, "rb") as f:
        got = pickle.load(f)
    assert got == {k: {"key": k, **v} for k, v in data.items()}  # the key column was added, and said so


def test_auto_layout_falls_back_to_key_value_and_says_why(tmp_path):
    src, out = tmp_path / "in.pkl", tmp_path / "out.sqlite"
    data = {f"k{i}": {"x": i} for i in range(150)}
    data["late"] = [1, 2]  # after the first records: the table cannot hold it
    src.write_bytes(pickle.dumps(data))
    r = convert(src, out)
    assert r.returncode == 0, r.stderr
    assert "record 'late' is a list" in r.stderr and "converting again with --layout kv" in r.stderr
    assert convert("verify", "-q", src, out).returncode == 0  # key/value keeps every record
    r = convert(src, tmp_path / "t.sqlite", "--layout", "table")
    assert r.returncode == 1 and "use --layout kv" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.pkl", "out.sqlite"]


def test_verify_asks_for_every_record_exactly_so_auto_picks_key_value_over_an_added_key_column(tmp_path):
    src = tmp_path / "in.pkl"
    src.write_bytes(pickle.dumps({"a": {"x": 1}, "b": {"x": 2, "y": "new"}}))
    r = convert(src, tmp_path / "out.sqlite", "--verify")
    assert r.returncode == 0, r.stderr
    assert "would gain a field 'key'" in r.stderr and "kv layout" in r.stderr and "verified: 2 record(s)" in r.stderr
    r = convert(src, tmp_path / "table.sqlite")  # without --verify: the table, its changes reported
    assert r.returncode == 0 and "added column 'key'" in r.stderr and "table layout" in r.stderr


# -- a SQLite file cut short: SQLite reads the missing pages as zeros, so it must be refused first --

def _make_db(path, tables=("t",), n=100, wal=False):
    con = sqlite3.connect(path)
    if wal:
        con.execute("PRAGMA journal_mode = WAL")
    for table in tables:
        con.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT)")
        con.executemany(f"INSERT INTO {table} VALUES (?, ?)", [(i, f"{table} name {i}" * 3) for i in range(n)])
    con.commit()
    return con


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _expected(table="t", n=100):
    return [{"key": i, "value": {"id": i, "name": f"{table} name {i}" * 3}} for i in range(n)]


def _assert_refused_as_truncated(r, src, out):
    assert r.returncode == 1, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and str(src) in lines[0] and "truncated SQLite database" in lines[0], r.stderr
    assert "Traceback" not in r.stderr
    assert not out.exists() and not [p for p in out.parent.iterdir() if ".converting" in p.name]


def _cuts(size, page):
    return sorted({size - 1, size - 100, size - page, size // 2, page, 99})


def test_a_truncated_sqlite_database_is_an_error_naming_it_never_made_up_rows(tmp_path):
    """100 rows cut inside the last page read (without this check) as 100 rows of zeros, exit 0."""
    for tables, n, extra in [(("t",), 100, []), (("t",), 200, []), (("a", "b"), 150, ["--table", "b"]),
                             (("a", "b"), 150, [])]:
        whole = tmp_path / "whole.sqlite"
        _make_db(whole, tables, n).close()
        data = whole.read_bytes()
        page = int.from_bytes(data[16:18], "big")
        assert int.from_bytes(data[28:32], "big") * page == len(data)
        src = tmp_path / "cut.sqlite"
        for cut in _cuts(len(data), page):
            src.write_bytes(data[:cut])
            # to a SQLite output too (at a cut inside the last page and at a page boundary)
            for out in (tmp_path / "out.jsonl", tmp_path / "out.sqlite")[:1 + (cut in (len(data) - 1, page))]:
                _assert_refused_as_truncated(convert(src, out, "--from", "sqlite", *extra), src, out)
        # the message says what the header says and what the file has
        src.write_bytes(data[:len(data) - 100])
        r = convert(src, tmp_path / "out.jsonl", *extra)
        pages = len(data) // page
        assert f"the header says {pages:,} pages of {page:,} bytes ({len(data):,} bytes) but the file has " \
               f"{len(data) - 100:,} bytes" in r.stderr
        whole.unlink()


def test_a_truncated_dbm_sqlite3_file_is_an_error_naming_it(tmp_path):
    whole = tmp_path / "whole.sqlite3"
    con = sqlite3.connect(whole)
    con.execute("CREATE TABLE Dict (key BLOB UNIQUE NOT NULL, value BLOB NOT NULL)")
    con.executemany("INSERT INTO Dict VALUES (?, ?)", [(f"k{i}".encode(), pickle.dumps("v" * 40 + str(i)))
                                                        for i in range(200)])
    con.commit()
    con.close()
    data = whole.read_bytes()
    page = int.from_bytes(data[16:18], "big")
    src, out = tmp_path / "store.sqlite3", tmp_path / "out.jsonl"
    src.write_bytes(data)
    assert convert(src, out, "--from", "dbm.sqlite3").returncode == 0
    assert len(_records(out)) == 200
    out.unlink()
    for cut in _cuts(len(data), page):
        src.write_bytes(data[:cut])
        for args in (["--from", "dbm.sqlite3"], [], ["--from", "shelve"]):  # as a shelve too, not "no store"
            _assert_refused_as_truncated(convert(src, out, *args), src, out)
    other = tmp_path / "other.db"  # a healthy database that is no shelve says what it holds
    sqlite3.connect(other).execute("CREATE TABLE t (a)").connection.commit()
    r = convert(other, out, "--from", "shelve")
    assert r.returncode == 1 and "not a shelve: a SQLite database without the table Dict" in r.stderr, r.stderr


def test_healthy_sqlite_databases_of_every_shape_still_convert_exactly(tmp_path):
    out = tmp_path / "out.jsonl"

    def exact(src, table="t", n=100, *args):
        r = convert(src, out, "-q", *args)
        assert r.returncode == 0, r.stderr
        assert _records(out) == _expected(table, n)
        out.unlink()

    # freelist pages: the file holds pages no table uses, and the header counts them
    src = tmp_path / "free.sqlite"
    con = _make_db(src, n=300)
    con.execute("DELETE FROM t WHERE id >= 100")
    con.commit()
    con.close()
    data = src.read_bytes()
    assert int.from_bytes(data[36:40], "big") > 0  # freelist pages
    exact(src)
    # longer than the header says (bytes after the last page): SQLite reads the pages it counts
    src.write_bytes(data + b"\0" * 1000)
    exact(src)
    # an older writer's header, whose size field is stale (version-valid-for differs from the change
    # counter): the size is the file's, which need not be a whole number of pages
    stale = bytearray(data + b"\0" * 100)
    stale[92:96] = (int.from_bytes(stale[24:28], "big") + 1).to_bytes(4, "big")
    src.write_bytes(bytes(stale))
    exact(src)
    # a WAL-mode database closed cleanly (no -wal beside it), whole
    wal_db = tmp_path / "closed.sqlite"
    _make_db(wal_db, wal=True).close()
    assert not os.path.exists(f"{wal_db}-wal") and wal_db.read_bytes()[18:20] == b"\2\2"
    exact(wal_db)
    cut = tmp_path / "closed_cut.sqlite"
    cut.write_bytes(wal_db.read_bytes()[:-100])  # and cut short, refused like any other
    _assert_refused_as_truncated(convert(cut, out), cut, out)


def test_a_live_wal_database_whose_pages_are_in_its_wal_converts_exactly(tmp_path):
    src, out = tmp_path / "live.sqlite", tmp_path / "out.jsonl"
    con = sqlite3.connect(src)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA wal_autocheckpoint = 0")  # every page stays in the -wal file
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
    con.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"t name {i}" * 3) for i in range(200)])
    con.commit()
    try:
        wal = tmp_path / "live.sqlite-wal"
        assert wal.stat().st_size > src.stat().st_size  # the main file is a fraction of the database
        r = convert(src, out, "-q")
        assert r.returncode == 0, r.stderr
        assert _records(out) == _expected(n=200)
        out.unlink()
        # a checkpoint cut off after it wrote page 1: the main file's header counts pages that are
        # only in the WAL, and SQLite reads them from there
        copy = tmp_path / "copy"
        copy.mkdir()
        raw = wal.read_bytes()
        page = int.from_bytes(raw[8:12], "big")
        frames = [raw[i:i + 24 + page] for i in range(32, len(raw) - 24 - page + 1, 24 + page)]
        page1 = [f[24:] for f in frames if int.from_bytes(f[:4], "big") == 1][-1]
        main = bytearray(src.read_bytes())
        main[:page] = page1
        assert int.from_bytes(page1[28:32], "big") * page > len(main)
        (copy / "db.sqlite").write_bytes(bytes(main))
        (copy / "db.sqlite-wal").write_bytes(raw)
        r = convert(copy / "db.sqlite", out, "-q")
        assert r.returncode == 0, r.stderr
        assert _records(out) == _expected(n=200)
    finally:
        con.close()


def test_generated_columns_are_read_like_the_others(tmp_path):
    """PRAGMA table_info leaves generated columns out: they were dropped, and verify said equal."""
    src = tmp_path / "gen.sqlite"
    con = sqlite3.connect(src)
    con.executescript("CREATE TABLE g (id INTEGER PRIMARY KEY, a INT, b INT GENERATED ALWAYS AS (a * 2) STORED, "
                      "c TEXT GENERATED ALWAYS AS ('x' || a) VIRTUAL); INSERT INTO g (id, a) VALUES (1, 5), (2, 7);")
    con.commit()
    con.close()
    out = tmp_path / "out.jsonl"
    r = convert(src, out, "-q")
    assert r.returncode == 0, r.stderr
    assert _records(out) == [{"key": 1, "value": {"id": 1, "a": 5, "b": 10, "c": "x5"}},
                             {"key": 2, "value": {"id": 2, "a": 7, "b": 14, "c": "x7"}}]
    r = convert(src, tmp_path / "copy.sqlite", "--verify", "-q")
    assert r.returncode == 0, r.stderr
    r = convert(tmp_path / "copy.sqlite", tmp_path / "back.jsonl", "-q")
    assert _records(tmp_path / "back.jsonl") == _records(out)


def test_a_lone_surrogate_falls_back_to_key_value_or_is_refused_never_an_internal_error(tmp_path):
    cases = {"value": {"r1": {"a": "\udcff", "b": 2}}, "field": {"r1": {"\ud800col": 1}}, "key": {"\ud800x": {"a": 1}}}
    for name, data in cases.items():
        src = tmp_path / f"{name}.pkl"
        src.write_bytes(pickle.dumps(data))
        auto, table = tmp_path / f"{name}.sqlite", tmp_path / f"{name}-table.sqlite"
        r = convert(src, auto)
        if name == "key":  # no SQLite text holds it: refused, naming the key and what holds it
            assert r.returncode == 1 and "key '\\ud800x' holds a lone surrogate" in r.stderr and "jsonl" in r.stderr
        else:  # auto: key/value, which tags the string, said in a note; every record exact
            assert r.returncode == 0 and "kv layout" in r.stderr and "lone surrogate" in r.stderr, r.stderr
            assert convert("verify", src, auto).returncode == 0
        r = convert(src, table, "--layout", "table")
        assert r.returncode == 1 and "lone surrogate" in r.stderr and "internal error" not in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and not table.exists()
