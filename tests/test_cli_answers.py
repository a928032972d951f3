"""Clear answers at the command line: help that lists what it takes, advice that names a flag the
command has, `formats` telling what this Python can write, `verify -q`, and dbm.ndbm on a
Berkeley-DB-backed Python. Everything runs the real command line in a subprocess."""

import json
import os
import pickle
import site
import subprocess
import sys
from pathlib import Path

import pytest

ENV = {**os.environ, "CONVERTER_LOAD_PLUGINS": ""}
CONVERT = [sys.executable, "-m", "converter"]
EXAMPLE = Path(__file__).parent.parent / "examples" / "people.pkl"
DEBIAN_PY = "/usr/bin/python3"


def run(*args, py=None):
    return subprocess.run([*(py or CONVERT), *map(str, args)], capture_output=True, text=True, env=ENV, timeout=120)


def test_help_lists_every_built_in_format_and_codec_and_shows_examples():
    from converter.registry import get_registry

    registry = get_registry()
    text = run("convert", "--help").stdout
    flat = " ".join(text.split())
    for fmt in registry:
        if fmt.builtin:
            assert fmt.name in flat, fmt.name
    for codec in registry.codecs:
        assert codec in flat, codec
    assert "Examples:" in text and "convert people.pkl people.json" in text
    assert "--from FORMAT" in text and "--allow MODULE.NAME" in text and "<str>" not in text
    assert "convert people.pkl people.json" in run("--help").stdout


def test_detection_advice_names_the_flag_of_the_command_that_failed(tmp_path):
    junk = tmp_path / "notes.xyz"
    junk.write_text("just some words\n")
    assert "give one with --from" in run(junk, tmp_path / "out.json").stderr
    r = run("verify", junk, EXAMPLE)
    assert r.returncode == 1 and "give one with --format-a" in r.stderr
    assert "give one with --format-b" in run("verify", EXAMPLE, junk).stderr
    r = run("identify", junk)
    assert r.returncode == 1 and "cannot tell the format" in r.stderr and "--from" not in r.stderr


def test_formats_says_what_this_python_cannot_write_and_why():
    import importlib.util

    rows = {r["name"]: r for r in json.loads(run("formats", "--json").stdout)}
    has_gdbm = importlib.util.find_spec("_gdbm") is not None
    assert rows["dbm.gnu"]["write"] is has_gdbm and rows["dbm.gnu"]["write_needs"] == ["_gdbm"]
    assert rows["json"]["write"] is True and rows["dbm.dumb"]["write"] is True
    text = run("formats").stdout
    if not has_gdbm:
        assert "not written here: needs _gdbm, which this Python lacks" in text


def test_verify_quiet_answers_with_the_exit_status_only(tmp_path):
    same = tmp_path / "same.json"
    assert run(EXAMPLE, same, "-q").returncode == 0
    r = run("verify", "-q", EXAMPLE, same)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    other = tmp_path / "other.pkl"
    other.write_bytes(pickle.dumps({"someone": "else"}))
    r = run("verify", "--quiet", EXAMPLE, other)
    assert (r.returncode, r.stdout, r.stderr) == (1, "", "")


def _debian_convert():
    """This checkout's converter under Debian's Python (which has a Berkeley-DB-backed _dbm), with
    this venv's pure-Python dependencies; only where the two Pythons are the same version."""
    probe = subprocess.run([DEBIAN_PY, "-c", "import sys, _dbm; print(sys.version_info[:2])"],
                           capture_output=True, text=True) if Path(DEBIAN_PY).exists() else None
    if probe is None or probe.returncode or probe.stdout.strip() != str(sys.version_info[:2]):
        pytest.skip("needs Debian's python3, of this Python's version, with _dbm")
    code = (f"import site, sys; site.addsitedir({site.getsitepackages()[0]!r}); sys.argv[0] = 'convert'; "
            f"from converter.cli import main; main()")
    return [DEBIAN_PY, "-c", code]


def test_dbm_ndbm_written_by_berkeley_db_reads_back_by_the_name_given(tmp_path):
    """Debian's dbm.ndbm is Berkeley DB's: asked for w.pag it used to make w.pag.db, unreadable."""
    deb = _debian_convert()
    out = tmp_path / "w.pag"
    r = run(EXAMPLE, out, "--value-codec", "pickle", "--verify", py=deb)
    assert r.returncode == 0, r.stderr
    made = sorted(p.name for p in tmp_path.iterdir())
    assert made in (["w.db"], ["w.dir", "w.pag"]), made
    if made == ["w.db"]:
        assert "writes w.db" in r.stderr
    back = tmp_path / "back.pkl"
    r = run(out, back, "--value-codec", "pickle")
    assert r.returncode == 0, r.stderr
    with open(back, "rb") as f, open(EXAMPLE, "rb") as g:
        assert pickle.load(f) == pickle.load(g)


def test_this_tools_own_zoneinfo_values_come_back_from_its_pickles_with_the_default_allowlist(tmp_path):
    import zoneinfo

    try:
        zoneinfo.ZoneInfo("Europe/Paris")
    except zoneinfo.ZoneInfoNotFoundError:
        pytest.skip("no time-zone data on this machine")
    import datetime

    from converter.jsontags import dumps

    src = tmp_path / "in.json"  # what this tool writes for such a value
    src.write_text(dumps({"meeting": datetime.datetime(2026, 12, 3, 10, tzinfo=zoneinfo.ZoneInfo("Europe/Paris"))}))
    assert "$zoneinfo" in src.read_text()
    r = run(src, tmp_path / "out.pkl")
    assert r.returncode == 0, r.stderr
    r = run(tmp_path / "out.pkl", tmp_path / "back.json")  # no --allow, and never builtins.getattr
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "back.json").read_text()) == json.loads(src.read_text())


MAIN_CLASS = """
import pickle, sys
class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y
pickle.dump({"p": Point(1, 2), "n": 3}, open(sys.argv[1], "wb"))
"""


def test_a_class_from_main_gets_advice_that_works_when_followed(tmp_path):
    src = tmp_path / "pt.pkl"
    subprocess.run([sys.executable, "-c", MAIN_CLASS, str(src)], check=True)
    r = run(src, tmp_path / "out.pkl")
    assert r.returncode == 1 and "defined in the script that wrote the pickle" in r.stderr
    assert "--allow __main__" not in r.stderr
    r = run(src, tmp_path / "out.pkl", "--trust")
    assert r.returncode == 1 and "needs code this Python does not have" in r.stderr and "corrupt" not in r.stderr
    # the advice: a script that defines the class converts it, safely (no --trust)
    script = tmp_path / "use.py"
    script.write_text("import sys, converter\n" + MAIN_CLASS.split("pickle.dump")[0].split("import pickle, sys")[1]
                      + "converter.convert(sys.argv[1], sys.argv[2], allow=['__main__.Point'])\n")
    done = subprocess.run([sys.executable, str(script), str(src), str(tmp_path / "out.pkl")], capture_output=True,
                          text=True, env=ENV)
    assert done.returncode == 0, done.stderr
    # and JSON, which cannot hold the class, names the record and an output that can
    done = subprocess.run([sys.executable, str(script), str(src), str(tmp_path / "out.json")], capture_output=True,
                          text=True, env=ENV)
    assert "record 'p'" in done.stderr and "a pickle output, .pkl, holds it" in done.stderr


def test_progress_shows_a_percentage_and_time_left_where_the_total_is_known(tmp_path):
    src = tmp_path / "big.jsonl"
    src.write_text("".join('{"key": "k%d", "value": %d}\n' % (i, i) for i in range(150_000)))
    r = subprocess.run([*CONVERT, str(src), str(tmp_path / "big.sqlite"), "--verify"], capture_output=True, text=True,
                       env={**ENV, "TTY_COMPATIBLE": "1", "COLUMNS": "160"}, timeout=120)
    assert r.returncode == 0, r.stderr
    frames = r.stderr.replace("\r", "\n")
    import re

    assert re.search(r"verifying: reading [AB] .*\b\d{1,3}%", frames), frames[-2000:]
    assert "150,000 record(s)" in r.stderr.splitlines()[-1]  # the summary, after the display is gone


def test_shell_completion_completes_subcommands_and_flags():
    script = run("--show-completion", "bash")
    assert script.returncode == 0 and "_convert_completion" in script.stdout
    env = {**ENV, "_CONVERT_COMPLETE": "complete_bash", "COMP_WORDS": "convert fo", "COMP_CWORD": "1"}
    words = subprocess.run(CONVERT, capture_output=True, text=True, env=env, timeout=60).stdout.split()
    assert words == ["formats"]
    env.update(COMP_WORDS="convert in.pkl out.json --json-s", COMP_CWORD="3")
    assert subprocess.run(CONVERT, capture_output=True, text=True, env=env, timeout=60).stdout.split() == ["--json-style"]
    # option values too: format and codec names from the live registry, and the fixed choices
    for words, cword, expected in (("convert in.pkl out --to js", "4", ["json", "jsonl"]),
                                   ("convert verify a b --format-a dbm.g", "5", ["dbm.gnu"]),
                                   ("convert in.pkl out.db --value-codec ut", "4", ["utf8", "utf8-or-raw"]),
                                   ("convert in.pkl out.sqlite --layout ", "4", ["auto", "table", "kv"]),
                                   ("convert in.pkl out.json --py2-strings la", "4", ["latin1"])):
        env.update(COMP_WORDS=words, COMP_CWORD=cword)
        got = subprocess.run(CONVERT, capture_output=True, text=True, env=env, timeout=60).stdout.split()
        assert got == expected, (words, got)


def test_every_value_the_json_tags_make_reads_back_from_this_tools_pickle_with_the_default_allowlist(tmp_path):
    import collections
    import datetime
    import decimal

    from converter.jsontags import dumps

    tz = datetime.timezone(datetime.timedelta(hours=5, minutes=30), "IST")
    value = {
        "tuple": (1, 2), "set": {1, 2}, "frozenset": frozenset({3}), "deque": collections.deque([1], maxlen=3),
        "bytes": b"\x00\xff", "bytearray": bytearray(b"ab"), "surrogate": "\ud800", "int": 2**70,
        "float": float("inf"), "complex": complex(1, -2), "decimal": decimal.Decimal("-0.10"),
        "date": datetime.date(2024, 2, 29), "datetime": datetime.datetime(2024, 2, 29, 13, 45, 0, 1, tzinfo=tz),
        "time": datetime.time(1, 2, 3, fold=1), "timedelta": datetime.timedelta(days=-1, seconds=5),
        "timezone": tz, "range": range(1, 10, 2), "slice": slice(1, None, 2),
        "ordered": collections.OrderedDict(b=1, a=2), "defaultdict": collections.defaultdict(list, {"k": [1]}),
    }
    src = tmp_path / "tags.json"
    src.write_text(dumps({"all": value}))
    assert run(src, tmp_path / "out.pkl").returncode == 0
    r = run(tmp_path / "out.pkl", tmp_path / "back.json")  # the default allowlist, no flags
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "back.json").read_text()) == json.loads(src.read_text())


# --- outputs that must never be replaced, and places an output cannot be made --------------

def test_force_never_replaces_a_device_fifo_or_directory(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    (tmp_path / "adir").mkdir()
    before = os.stat("/dev/null")
    for out, kind in (("/dev/null", "a character device"), (fifo, "a FIFO"), (tmp_path / "adir", "a directory")):
        r = run(EXAMPLE, out, "--to", "json", "--force")
        assert r.returncode == 1 and f"the output is {kind}, not a regular file" in r.stderr, r.stderr
        assert ".converting" not in r.stderr and len(r.stderr.splitlines()) == 1
    after = os.stat("/dev/null")
    assert (after.st_mode, after.st_rdev, after.st_ino) == (before.st_mode, before.st_rdev, before.st_ino)
    assert fifo.is_fifo() and (tmp_path / "adir").is_dir() and not any((tmp_path / "adir").iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir", "pipe"]  # no scratch directory left


def test_an_output_place_that_cannot_take_it_is_refused_before_reading_also_in_a_dry_run(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    r = run(EXAMPLE, afile / "out.json")
    assert r.returncode == 1 and "afile: not a directory" in r.stderr
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    r = run(EXAMPLE, loop, "--to", "json")
    assert r.returncode == 1 and "internal error" not in r.stderr and "output exists" in r.stderr
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o555)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("root writes into a read-only directory")
        for extra in ((), ("--dry-run",)):
            r = run(EXAMPLE, ro / "x.json", *extra)
            assert r.returncode == 1 and "cannot create the output in this directory (permission denied)" in r.stderr
            assert ".converting" not in r.stderr
    finally:
        os.chmod(ro, 0o755)


def test_an_unreadable_input_is_one_line_exit_1_not_a_usage_error(tmp_path):
    f = tmp_path / "noread.pkl"
    f.write_bytes(EXAMPLE.read_bytes())
    os.chmod(f, 0)
    if os.access(f, os.R_OK):
        pytest.skip("root reads a file without read permission")
    for args in ((f, tmp_path / "x.json"), ("verify", f, EXAMPLE), ("identify", f)):
        r = run(*args)
        assert r.returncode == 1 and r.stderr.strip().endswith("Permission denied"), r.stderr
        assert "Usage" not in r.stderr and len(r.stderr.splitlines()) == 1


def test_a_missing_input_is_no_such_file_whatever_its_extension(tmp_path):
    for name in ("nope.sqlite", "nope.db", "nope.dat", "nope.shelve", "nope.gdbm", "nope.jsonl"):
        r = run(tmp_path / name, tmp_path / "x.json")
        assert r.returncode == 1 and r.stderr.strip().endswith(f"{name}: no such file"), r.stderr
        r = run("verify", tmp_path / name, EXAMPLE)
        assert r.returncode == 1 and "no such file" in r.stderr
    r = run(tmp_path / "nope.sqlite", tmp_path / "x.json", "--from", "sqlite")
    assert r.returncode == 1 and "no such file" in r.stderr
    # one file of a two-file store present: the store's own message, which names the missing one
    import dbm.dumb
    with dbm.dumb.open(str(tmp_path / "half"), "n") as db:
        db[b"k"] = b"v"
    (tmp_path / "half.dat").unlink()
    r = run(tmp_path / "half.dat", tmp_path / "x.json")
    assert r.returncode == 1 and "needs both" in r.stderr


def test_a_link_that_leads_nowhere_says_so_in_convert_identify_and_verify(tmp_path):
    (tmp_path / "loop").symlink_to("loop")
    (tmp_path / "a.pkl").symlink_to("b.pkl")
    (tmp_path / "b.pkl").symlink_to("a.pkl")
    (tmp_path / "gone.pkl").symlink_to("moved.pkl")
    for name, says in (("loop", "symbolic link loop"), ("a.pkl", "symbolic link loop"),
                       ("gone.pkl", "broken symbolic link (to 'moved.pkl', which does not exist)")):
        for args in ((tmp_path / name, tmp_path / "x.json"), ("identify", tmp_path / name),
                     ("verify", tmp_path / name, EXAMPLE)):
            r = run(*args)
            assert r.returncode == 1 and r.stderr.strip() == f"convert: error: {tmp_path / name}: {says}", (args, r.stderr)
    assert not (tmp_path / "x.json").exists()
    # identify names a file the system cannot find once, also where companions made it look like a store
    (tmp_path / "c.pkl.db").touch()
    r = run("identify", tmp_path / "c.pkl")
    assert r.returncode == 1 and r.stderr.count(str(tmp_path / "c.pkl")) == 1, r.stderr
    r = run("identify", tmp_path / "c.pkl", "--debug")  # the traceback, not a claim about standard output
    assert r.returncode == 1 and "FileNotFoundError" in r.stderr and "standard output" not in r.stderr, r.stderr


def test_a_misspelt_codec_is_a_usage_error_even_where_no_codec_is_needed(tmp_path):
    (tmp_path / "exists.json").write_text("{}")
    for args in ((EXAMPLE, tmp_path / "o.json", "--key-codec", "utf"),
                 (EXAMPLE, tmp_path / "exists.json", "--value-codec", "pikle"),  # before "output exists"
                 ("verify", EXAMPLE, EXAMPLE, "--value-codec", "pikle")):
        r = run(*args)
        assert r.returncode == 2 and "Unknown codec" in r.stderr and "did you mean" in r.stderr, r.stderr
        assert "after record" not in r.stderr
    src = tmp_path / "tree"
    src.mkdir()
    (src / "p.pkl").write_bytes(EXAMPLE.read_bytes())
    for extra in ((), ("--dry-run",)):
        r = run("migrate", src, tmp_path / "dest", "--key-codec", "utf", *extra)
        assert r.returncode == 2 and "Unknown codec 'utf'" in r.stderr
    assert not (tmp_path / "o.json").exists() and not (tmp_path / "dest").exists()


def _sh(script: str, tmp_path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=ENV, cwd=tmp_path, timeout=120)


def test_a_closed_full_or_gone_stdout_gets_the_policys_answer_for_every_command(tmp_path):
    conv = " ".join(map(str, CONVERT))
    for cmd in (f"identify {EXAMPLE}", "formats", "plugins", f"verify {EXAMPLE} {EXAMPLE}", "--version", "--help",
                f"{EXAMPLE} - --to json"):
        for redirect, words in ((">&-", "standard output: it is closed"),
                                (">/dev/full", "standard output: no space left on the device")):
            r = _sh(f"{conv} {cmd} {redirect}", tmp_path)
            assert r.returncode == 1 and r.stderr.strip() == f"convert: error: {words}", (cmd, redirect, r.stderr)
        # the reader goes away before anything is written: quiet, 141, as SIGPIPE would
        r = _sh(f"(sleep 0.3; {conv} {cmd}; echo $? >&2) | true", tmp_path)
        assert r.stderr.strip() == "141", (cmd, r.stderr)
    # a closed or full stderr loses messages, never the outcome
    for redirect in ("2>&-", "2>/dev/full"):
        r = _sh(f"{conv} {EXAMPLE} out.json --force {redirect}", tmp_path)
        assert r.returncode == 0 and (tmp_path / "out.json").exists()


def test_standard_pickles_of_time_zones_read_with_the_default_allowlist_and_getattr_stays_refused(tmp_path):
    import datetime
    import zoneinfo

    paris = zoneinfo.ZoneInfo("Europe/Paris")
    value = {"zone": paris, "when": datetime.datetime(2021, 10, 31, 2, 30, fold=1, tzinfo=paris)}
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        src = tmp_path / f"z{protocol}.pkl"
        src.write_bytes(pickle.dumps(value, protocol=protocol))  # the standard pickler: getattr(ZoneInfo, ...)
        out = tmp_path / f"z{protocol}.json"
        r = run(src, out, "--verify")
        assert r.returncode == 0, r.stderr
        assert '"$zoneinfo":"Europe/Paris"' in out.read_text()
        # and back through a shelve, whose values are pickled
        r = run(out, tmp_path / f"z{protocol}.shelve.dat", "--to", "dbm.dumb", "--verify", "-q")
        assert r.returncode == 0, r.stderr
    evil = tmp_path / "evil.pkl"
    marker = tmp_path / "pwned"
    # getattr(os, "system")("touch marker"), by hand
    evil.write_bytes(b"c__builtin__\ngetattr\n(cos\nsystem\n" b"tR(V touch " + str(marker).encode() + b"\ntR.")
    r = run(evil, tmp_path / "e.json")
    assert r.returncode == 1 and not marker.exists() and "--allow" not in r.stderr and "can run code" in r.stderr
    evil.write_bytes(b"c__builtin__\ngetattr\n(cdecimal\nDecimal\nV__subclasses__\ntR)R.")
    r = run(evil, tmp_path / "e.json")
    assert r.returncode == 1 and "refused builtins.getattr" in r.stderr and "--allow" not in r.stderr


def test_old_pickle_protocols_refuse_a_fold_they_would_drop(tmp_path):
    src = tmp_path / "fold.json"
    src.write_text('{"a": {"$datetime": {"local": "2021-10-31T02:30:00", "tz": {"$zoneinfo": "Europe/Paris"}, '
                   '"fold": 1}}, "b": {"$time": {"local": "02:30:00", "tz": null, "fold": 1}}}')
    for protocol in range(4):
        for out in (tmp_path / f"f{protocol}.pkl", tmp_path / f"f{protocol}.dat"):
            r = run(src, out, "--pickle-protocol", protocol)
            assert r.returncode == 1 and "has fold=1" in r.stderr and "--pickle-protocol 4" in r.stderr, r.stderr
            assert not out.exists()
    for protocol in (4, 5):
        r = run(src, tmp_path / f"f{protocol}.pkl", "--pickle-protocol", protocol, "--verify")
        assert r.returncode == 0, r.stderr
    plain = tmp_path / "plain.json"
    plain.write_text('{"a": {"$time": {"local": "02:30:00", "tz": null, "fold": 0}}}')
    assert run(plain, tmp_path / "p0.pkl", "--pickle-protocol", "0", "--verify").returncode == 0


def test_pk_always_makes_a_table_and_never_merges_records(tmp_path):
    nested = tmp_path / "nested.json"
    nested.write_text('[{"id": 1, "tags": [1]}, {"id": 1, "tags": [2]}]')
    r = run(nested, tmp_path / "n.sqlite", "--pk", "id")
    assert r.returncode == 1 and "two records have the same id value" in r.stderr
    assert not (tmp_path / "n.sqlite").exists()
    mixed = tmp_path / "mixed.json"
    mixed.write_text('[{"id": 1, "v": 1}, {"id": 2, "v": 2.5}, {"id": 3, "v": true}]')
    r = run(mixed, tmp_path / "m.sqlite", "--pk", "id")
    assert r.returncode == 1 and "leave out --pk and use --layout kv" in r.stderr
    ok = tmp_path / "ok.json"
    ok.write_text('[{"id": 7, "tags": [1]}, {"id": 8, "tags": [2]}]')
    r = run(ok, tmp_path / "ok.sqlite", "--pk", "id")
    assert r.returncode == 0 and "table layout (--pk)" in r.stderr
    import sqlite3
    con = sqlite3.connect(tmp_path / "ok.sqlite")
    assert con.execute("SELECT id, tags FROM ok ORDER BY id").fetchall() == [(7, "[1]"), (8, "[2]")]
    con.close()
    for bad in (("--pk", "id", "--layout", "kv"), ("--pk", ""), ("--table", " ")):
        r = run(ok, tmp_path / "bad.sqlite", *bad)
        assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, (bad, r.stderr)


def test_the_readmes_own_class_recipe_works_as_written_and_verifies(tmp_path):
    lib = tmp_path / "src"
    lib.mkdir()
    (lib / "geom.py").write_text("class Point:\n    def __init__(self, x, y):\n        self.x, self.y = x, y\n")
    subprocess.run([sys.executable, "-c", "import pickle, geom; pickle.dump({'a': geom.Point(1, 2)}, "
                    "open('data.pkl', 'wb'))"], cwd=tmp_path, env={**ENV, "PYTHONPATH": str(lib)}, check=True)
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    line = next(l for l in readme.splitlines() if "--allow geom.Point" in l and l.startswith("PYTHONPATH=src"))
    argv = line.split("#")[0].split()[2:]  # after PYTHONPATH=src convert
    r = subprocess.run([*CONVERT, *argv], cwd=tmp_path, env={**ENV, "PYTHONPATH": str(lib)}, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([*CONVERT, "verify", "data.pkl", "out.db", "--allow", "geom.Point"], cwd=tmp_path,
                       env={**ENV, "PYTHONPATH": str(lib)}, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "equal" in r.stdout, r.stdout + r.stderr
    # without the module on the path: one line that says what to do
    r = subprocess.run([*CONVERT, *argv, "--force"], cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=120)
    errors = [l for l in r.stderr.splitlines() if l.startswith("convert: error:")]
    assert r.returncode == 1 and len(errors) == 1 and "PYTHONPATH" in errors[0], r.stderr


def test_dbm_flavours_this_python_cannot_write_are_usage_errors_naming_what_is_missing(tmp_path):
    import importlib.util

    r = run(EXAMPLE, tmp_path / "s.db", "--to", "shelve", "--dbm", "gnuu")
    assert r.returncode == 2 and "a shelve can be written here as one of" in r.stderr and "json" not in r.stderr
    r = run(EXAMPLE, tmp_path / "s.db", "--to", "shelve", "--dbm", "sqlite")
    assert r.returncode == 2 and "did you mean 'dbm.sqlite3'" in r.stderr
    if importlib.util.find_spec("_gdbm") is None:
        r = run(EXAMPLE, tmp_path / "s.db", "--to", "shelve", "--dbm", "gnu")
        assert r.returncode == 2 and "needs _gdbm" in r.stderr and "did you mean" not in r.stderr
    assert not list(tmp_path.iterdir())


def test_the_summary_line_says_every_record_was_kept_and_escapes_control_characters(tmp_path):
    src = tmp_path / "rep.jsonl"
    src.write_text('{"key": "a", "value": 1}\n{"key": "a", "value": 2}\n')
    r = run(src, tmp_path / "rep.json")
    assert r.returncode == 0 and "1 key(s) repeated, every record kept" in r.stderr and "overridden" not in r.stderr
    odd = tmp_path / "odd\x1b[31m.pkl"
    odd.write_bytes(EXAMPLE.read_bytes())
    r = run(odd, tmp_path / "odd.json")
    assert r.returncode == 0 and "\x1b" not in r.stderr and "odd\\x1b[31m.pkl" in r.stderr
