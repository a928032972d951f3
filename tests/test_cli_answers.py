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
