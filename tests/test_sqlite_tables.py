"""SQLite table output as sqlite-utils users expect it, through the real command line: --pk FIELD,
positional sources with a `key` field of their own, int/float columns, dates, and the fall back
to the key/value layout said out loud."""

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
