"""The command line, through typer's runner and through the installed ``convert``."""

import json
import os
import pickle
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from converter.cli import app

from expected import PEOPLE_PKL_VALUE

EXAMPLE = Path(__file__).parent.parent / "examples" / "people.pkl"
runner = CliRunner()


def run(*args, input=None):
    return runner.invoke(app, [str(a) for a in args], input=input)


@pytest.fixture
def people(tmp_path):
    shutil.copy(EXAMPLE, tmp_path / "people.pkl")
    return tmp_path / "people.pkl"


def test_example_to_json_is_ordinary_json(people):
    r = run(people, people.with_suffix(".json"))
    assert r.exit_code == 0, r.output
    assert json.loads(people.with_suffix(".json").read_text()) == PEOPLE_PKL_VALUE
    assert "2 record(s)" in r.stderr


def test_example_to_sqlite_makes_a_table_and_back(people, tmp_path):
    db = tmp_path / "people.sqlite"
    assert run(people, db).exit_code == 0
    con = sqlite3.connect(db)
    assert [c[1] for c in con.execute("PRAGMA table_info(people)")] == ["key", "name", "age", "pay"]
    assert con.execute("SELECT name, age, pay FROM people WHERE key = 'Omkar'").fetchone() == ("Omkar Pathak", 21, 40000)
    con.close()
    r = run(db, tmp_path / "back.pkl")
    assert r.exit_code == 0, r.output
    assert pickle.loads((tmp_path / "back.pkl").read_bytes()) == PEOPLE_PKL_VALUE


def test_refuses_to_overwrite_without_force(people, tmp_path):
    out = tmp_path / "out.json"
    out.write_text("keep me")
    r = run(people, out)
    assert r.exit_code == 1
    assert "exists" in r.stderr and "--force" in r.stderr
    assert out.read_text() == "keep me"
    assert run(people, out, "--force").exit_code == 0
    assert json.loads(out.read_text()) == PEOPLE_PKL_VALUE


def test_refuses_output_that_is_the_input(people):
    before = people.read_bytes()
    r = run(people, people, "--to", "pickle", "--force")
    assert r.exit_code == 1 and "is the input" in r.stderr
    assert people.read_bytes() == before


def test_missing_input_is_a_one_line_error(tmp_path):
    r = run(tmp_path / "nope.pkl", tmp_path / "out.json")
    assert r.exit_code == 1
    assert r.stderr.strip().count("\n") == 0 and "nope.pkl" in r.stderr and "Traceback" not in r.stderr


def test_truncated_pickle_names_the_file_and_leaves_nothing(people, tmp_path):
    cut = tmp_path / "cut.pkl"
    cut.write_bytes(people.read_bytes()[:-10])
    r = run(cut, tmp_path / "out.json")
    assert r.exit_code == 1
    assert "cut.pkl" in r.stderr and "Traceback" not in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.pkl", "people.pkl"]


def test_debug_shows_the_traceback(people, tmp_path):
    cut = tmp_path / "cut.pkl"
    cut.write_bytes(people.read_bytes()[:-10])
    r = run(cut, tmp_path / "out.json", "--debug")
    assert r.exit_code != 0 and r.exception is not None


def test_unknown_format_is_a_usage_error(people, tmp_path):
    r = run(people, tmp_path / "out.x", "--to", "nosuch")
    assert r.exit_code == 2
    assert "Unknown format 'nosuch'" in r.stderr and "json" in r.stderr


def test_bad_option_value_is_a_usage_error(people, tmp_path):
    r = run(people, tmp_path / "o.json", "--json-style", "fancy")
    assert r.exit_code == 2


def test_undetectable_input_lists_what_was_checked(tmp_path):
    f = tmp_path / "mystery.bin"
    f.write_bytes(b"\x00\x01 nothing known \x02" * 10)
    r = run(f, tmp_path / "out.json")
    assert r.exit_code == 1
    assert "cannot tell the format" in r.stderr and "pickle" in r.stderr and "dbm.gnu" in r.stderr


def test_malicious_pickle_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pkl"
    # protocol 0 by hand: os.system("touch marker")
    evil.write_bytes(b"cos\nsystem\n(V touch " + str(marker).encode() + b"\ntR.")
    r = run(evil, tmp_path / "out.json")
    assert r.exit_code == 1
    assert "os.system" in r.stderr and "can run code" in r.stderr and "--allow" not in r.stderr
    assert not marker.exists()
    assert not (tmp_path / "out.json").exists()


def test_identify(people, fixtures):
    r = run("identify", people, fixtures / "py2" / "py2_proto0.pkl", fixtures / "py313" / "dbm_sqlite3.sqlite")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"{people}: pickle (pickle protocol 4")
    assert any(l.endswith("pickle (pickle protocol 0)") for l in lines)
    assert any("dbm.sqlite3" in l for l in lines)


def test_identify_json_and_bad_file(tmp_path):
    f = tmp_path / "x.json"
    f.write_text('{"a": 1}')
    r = run("identify", "--json", f, tmp_path / "missing")
    assert r.exit_code == 1
    data = json.loads(r.stdout)
    assert data[0]["format"] == "json" and "error" in data[1]


def test_formats_lists_every_builtin(tmp_path):
    r = run("formats", "--json")
    assert r.exit_code == 0
    rows = {f["name"]: f for f in json.loads(r.stdout)}
    for name in ["pickle", "json", "jsonl", "shelve", "dbm.dumb", "dbm.gnu", "dbm.ndbm", "dbm.sqlite3", "sqlite"]:
        assert rows[name]["read"] and rows[name]["distribution"] == "converter-toolkit"
    assert "cPickle" in rows["pickle"]["aliases"] and "gdbm" in rows["dbm.gnu"]["aliases"]
    text = run("formats").stdout
    assert "dbm.sqlite3" in text and "provided by" in text


def test_a_file_named_like_a_subcommand(people, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(people, tmp_path / "formats")
    r = run("./formats", "out.json")
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "out.json").read_text()) == PEOPLE_PKL_VALUE


def test_aliases_and_python2_names(people, tmp_path):
    r = run(people, tmp_path / "out", "--to", "dumbdbm")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "out.dat").exists() and (tmp_path / "out.dir").exists()
    r = run(tmp_path / "out", tmp_path / "back.pkl", "--from", "dumbdbm")
    assert r.exit_code == 0, r.output
    assert pickle.loads((tmp_path / "back.pkl").read_bytes()) == PEOPLE_PKL_VALUE


# -- the installed command, in a real subprocess --------------------------------------------

def _convert_exe():
    exe = shutil.which("convert", path=os.path.dirname(sys.executable))
    if exe is None:
        pytest.skip("the convert script is not installed beside this Python")
    return exe


def test_installed_command_and_module(people, tmp_path):
    exe = _convert_exe()
    env = {**os.environ, "CONVERTER_LOAD_PLUGINS": ""}
    p = subprocess.run([exe, str(people), str(tmp_path / "a.json")], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    assert json.loads((tmp_path / "a.json").read_text()) == PEOPLE_PKL_VALUE
    p = subprocess.run([sys.executable, "-m", "converter", str(people), "-", "--to", "json", "-q"],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == PEOPLE_PKL_VALUE and p.stderr == ""


def test_stdin_to_stdout(people):
    exe = _convert_exe()
    p = subprocess.run([exe, "-", "-", "--to", "jsonl", "-q"], input=people.read_bytes(), capture_output=True)
    assert p.returncode == 0, p.stderr
    lines = [json.loads(l) for l in p.stdout.decode().splitlines()]
    assert lines == [{"key": k, "value": v} for k, v in PEOPLE_PKL_VALUE.items()]


def test_subprocess_error_has_no_traceback(tmp_path):
    exe = _convert_exe()
    bad = tmp_path / "bad.json"
    bad.write_text('{"a": [1, 2')
    p = subprocess.run([exe, str(bad), str(tmp_path / "o.pkl")], capture_output=True, text=True)
    assert p.returncode == 1
    assert "bad.json" in p.stderr and "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o.pkl").exists()


def test_version_and_did_you_mean(tmp_path):
    """`convert --version`; a mistyped subcommand, format or codec gets a suggestion and exit 2."""
    env = {**os.environ, "CONVERTER_LOAD_PLUGINS": ""}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "converter", *map(str, args)], capture_output=True,
                              text=True, env=env, cwd=tmp_path, timeout=60)

    r = cli("--version")
    assert r.returncode == 0 and r.stdout.startswith("converter-toolkit ")
    r = cli("fromats")
    assert r.returncode == 2 and "did you mean 'formats'" in r.stderr
    # a misspelt option of the tool itself is not matched against the conversion's options
    r = cli("--versoin")
    assert r.returncode == 2 and "did you mean --version?" in r.stderr and "--verify" not in r.stderr
    r = cli("--verfy", "a.pkl", "b.json")  # ... while one closer to a conversion option still is
    assert r.returncode == 2 and "--verify" in r.stderr and "--version" not in r.stderr
    (tmp_path / "a.pkl").write_bytes(pickle.dumps({"k": 1}))
    r = cli("a.pkl", "out.x", "--to", "jsno")
    assert r.returncode == 2 and "did you mean 'json'" in r.stderr
    (tmp_path / "fromats").write_bytes(pickle.dumps({"k": 1}))  # a real file of that name is an input
    r = cli("fromats", "out.json")
    assert r.returncode == 0, r.stderr
