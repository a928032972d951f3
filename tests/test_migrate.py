"""``convert migrate``: a tree of real stores (made by Python 2.7, 3.13, the C gdbm and Berkeley
DB libraries, dbm.dumb) mixed with junk, nested directories and one corrupt store, migrated
through the real CLI in a subprocess, then again (a no-op), after a SIGKILL, and through a Dask
LocalCluster.

The tree is built and migrated once per module (the machine running CI is small): the first
tests read what that run left, the later ones make their own destinations.
"""

import dbm.dumb
import importlib.util
import hashlib
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import expected  # tests/fixtures/expected.py

FIXTURES = Path(__file__).parent / "fixtures"
DEBIAN_PY = Path("/usr/bin/python3")

# store (relative path of the file it is converted from) -> the fixture files it is made of
COPIED = {
    "app/sessions/py2_dumbdbm_shelve.dat": ["py2/py2_dumbdbm_shelve.dat", "py2/py2_dumbdbm_shelve.dir",
                                            "py2/py2_dumbdbm_shelve.bak"],
    "app/py2_dumbdbm_raw.dat": ["py2/py2_dumbdbm_raw.dat", "py2/py2_dumbdbm_raw.dir", "py2/py2_dumbdbm_raw.bak"],
    "app/pickles/py2_proto0.pkl": ["py2/py2_proto0.pkl"],
    "py313/dbm_dumb.dat": ["py313/dbm_dumb.dat", "py313/dbm_dumb.dir", "py313/dbm_dumb.bak"],
    "py313/shelve_sqlite3.db": ["py313/shelve_sqlite3.db"],
    "cache/users": ["debian/gdbm_small.gdbm"],  # extensionless gdbm, written by the C library
    "legacy/hash.db": ["debian/bdb_hash.db"],  # Berkeley DB
    "legacy/py2style_dbhash_shelve.db": ["debian/py2style_dbhash_shelve.db"],
    "legacy/deep/er/compat.dir": ["gdbm/compat.dir", "gdbm/compat.pag"],  # gdbm_compat ndbm
}
DUMB_RECORDS = {b"alpha": b"1", b"beta": "b\u00e9ta".encode(), b"gamma": b"\x00\xff binary"}
JUNK = {"README.txt": b"notes about this directory\n", "logs/app.log": b"2001-01-01 started\n" * 20,
        "logs/empty": b"", "img/logo.png": b"\x89PNG\r\n\x1a\n" + bytes(100), "bin/blob": os.urandom(300)}
CORRUPT = "legacy/broken.gdbm"


def cli(*args, timeout=120, **kwargs):
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "converter", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env, **kwargs)


def build_tree(root: Path) -> dict:
    """The tree; returns {store: expected records or None (checked against its source)}."""
    stores = {}
    for store, files in COPIED.items():
        where = root / store
        where.parent.mkdir(parents=True, exist_ok=True)
        for f in files:
            src = FIXTURES / f
            name = where.name if len(files) == 1 else src.name
            shutil.copy2(src, where.parent / name)
        stores[store] = None
    stores["app/sessions/py2_dumbdbm_shelve.dat"] = expected.PY2_SHELVE_VALUES
    d = root / "fresh" / "made_here"
    d.parent.mkdir()
    with dbm.dumb.open(str(d), "n") as db:  # dbm.dumb by this interpreter
        for k, v in DUMB_RECORDS.items():
            db[k] = v
    # one value in three is not UTF-8: the values stay bytes (raw), the keys are text
    stores["fresh/made_here.dat"] = {k.decode(): v for k, v in DUMB_RECORDS.items()}
    if DEBIAN_PY.exists() and subprocess.run([DEBIAN_PY, "-c", "import dbm.gnu"], capture_output=True).returncode == 0:
        subprocess.run([DEBIAN_PY, "-c", "import dbm.gnu, sys\nwith dbm.gnu.open(sys.argv[1], 'n') as db:\n"
                        "    for i in range(50): db[b'k%d' % i] = b'v%d' % i", str(root / "fresh" / "cgdbm")],
                       check=True)
        stores["fresh/cgdbm"] = {f"k{i}": f"v{i}" for i in range(50)}
    for name, data in JUNK.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    (root / CORRUPT).write_bytes((FIXTURES / "gdbm/std.db").read_bytes()[:3000])
    os.symlink("hash.db", root / "legacy" / "link.db")
    return stores


def snapshot(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in root.rglob("*") if p.is_file() and not p.is_symlink()}


def records(path, **kw):
    from converter import read_records

    return dict(read_records(path, **kw))


@pytest.fixture(scope="module")
def migrated(tmp_path_factory):
    base = tmp_path_factory.mktemp("migrate")
    src, dst = base / "src", base / "dst"
    src.mkdir()
    stores = build_tree(src)
    before = snapshot(src)
    r = cli("migrate", src, dst, "--jobs", "2")
    report = json.loads((dst / "migration-report.json").read_text())
    return {"base": base, "src": src, "dst": dst, "stores": stores, "before": before, "run": r, "report": report}


def entries(report):
    return {e["store"]: e for e in report["stores"]}


def test_every_good_store_converted_and_verified_with_exact_records(migrated):
    report, dst, src = migrated["report"], migrated["dst"], migrated["src"]
    by_store = entries(report)
    assert set(by_store) == set(migrated["stores"]) | {CORRUPT}, migrated["run"].stderr
    for store, want in migrated["stores"].items():
        e = by_store[store]
        assert (e["status"], e["verify"], e["error"]) == ("ok", "equal", None), e
        out = dst / e["output"]
        assert out.suffix == ".sqlite" and out.is_file()
        got = records(out)
        assert e["records"] == len(got)
        assert got == (want if want is not None else records(src / store)), store
    assert by_store["cache/users"]["output"] == "cache/users.sqlite"
    assert by_store["legacy/deep/er/compat.dir"]["output"] == "legacy/deep/er/compat.sqlite"


def test_the_corrupt_store_fails_alone_with_converts_message(migrated, tmp_path):
    r, report = migrated["run"], migrated["report"]
    assert r.returncode == 1
    failed = [e for e in report["stores"] if e["status"] != "ok"]
    assert [e["store"] for e in failed] == [CORRUPT]
    alone = cli(migrated["src"] / CORRUPT, tmp_path / "x.sqlite")
    message = alone.stderr.strip().removeprefix("convert: error: ")
    assert alone.returncode == 1 and failed[0]["error"] == message
    assert f"convert: error: {message}" in r.stderr
    assert not (migrated["dst"] / "legacy" / "broken.sqlite").exists()
    assert not [p for p in migrated["dst"].rglob("*") if p.name.endswith(".converting")]


def test_junk_and_companions_are_listed_not_converted(migrated):
    report = migrated["report"]
    listed = {d["path"]: d["reason"] for d in report["not_data"]}
    assert set(listed) == set(JUNK) | {"legacy/link.db"}
    assert "symbolic link" in listed["legacy/link.db"]
    assert report["unreadable"] == []
    stored = {s["path"] for e in report["stores"] for s in e["sources"]}
    assert {"app/sessions/py2_dumbdbm_shelve.dir", "app/sessions/py2_dumbdbm_shelve.bak",
            "legacy/deep/er/compat.pag"} <= stored
    outputs = {p.relative_to(migrated["dst"]).as_posix() for p in migrated["dst"].rglob("*") if p.is_file()}
    assert outputs == {e["output"] for e in report["stores"] if e["status"] == "ok"} | {"migration-report.json"}


def test_inputs_are_byte_identical(migrated):
    assert snapshot(migrated["src"]) == migrated["before"]


def test_report_fields(migrated):
    report, src = migrated["report"], migrated["src"]
    assert report["version"] == 1 and report["to"] == "sqlite" and report["runs"] == 1
    assert report["in_progress"] == [] and report["finished"]
    assert report["summary"]["failed"] == 1 and report["summary"]["ok"] == len(migrated["stores"])
    e = entries(report)["app/sessions/py2_dumbdbm_shelve.dat"]
    assert e["format"] == "dbm.dumb" and e["codecs"] == {"key": "utf8-or-raw", "value": "pickle"}
    assert [s["path"] for s in e["sources"]] == [f"app/sessions/py2_dumbdbm_shelve.{x}" for x in ("bak", "dat", "dir")]
    for s in e["sources"]:
        st = (src / s["path"]).stat()
        assert (s["size"], s["mtime_ns"]) == (st.st_size, st.st_mtime_ns) and "sha256" not in s
    assert e["seconds"] > 0 and e["notes"] and e["output"] == "app/sessions/py2_dumbdbm_shelve.sqlite"
    assert entries(report)["legacy/hash.db"]["format"] == "berkeleydb"
    assert entries(report)["cache/users"]["format"] == "dbm.gnu"


def test_detection_in_the_workers_finds_what_detection_in_one_process_finds(migrated):
    """--jobs 2 detects the files in its workers (and in the migrating process while they start);
    the plan must be the one a single process makes, store for store, file for file."""
    from converter.registry import get_registry
    from converter.tree import scan

    src = migrated["src"]
    tree = scan(src, get_registry())
    report = migrated["report"]
    assert {s.rel(src): (s.format, s.reason, sorted(p.relative_to(src).as_posix() for p in s.parts))
            for s in tree.stores} == \
        {e["store"]: (e["format"], e["detected"], sorted(f["path"] for f in e["sources"])) for e in report["stores"]}
    assert tree.not_data == report["not_data"] and tree.unreadable == report["unreadable"]
    assert len(tree.stores) == len(migrated["stores"]) + 1  # and the corrupt one


def test_rerun_is_a_no_op_and_dry_run_writes_nothing(migrated):
    dst = migrated["dst"]
    outputs = {p: p.stat().st_mtime_ns for p in dst.rglob("*.sqlite")}
    again = cli("migrate", migrated["src"], dst, "--jobs", "2", "--quiet")
    assert again.returncode == 1  # the corrupt store is still corrupt, and tried again
    report = json.loads((dst / "migration-report.json").read_text())
    old, new = entries(migrated["report"]), entries(report)
    assert report["runs"] == 2 and report["summary"]["up_to_date"] == len(migrated["stores"])
    for store in migrated["stores"]:
        assert new[store] == old[store]
    assert new[CORRUPT]["run"] == 2
    assert {p: p.stat().st_mtime_ns for p in dst.rglob("*.sqlite")} == outputs

    plan = cli("migrate", migrated["src"], migrated["base"] / "never", "--dry-run")
    assert plan.returncode == 0, plan.stderr
    assert not (migrated["base"] / "never").exists()
    assert "convert  cache/users (dbm.gnu) -> cache/users.sqlite" in plan.stdout
    assert "not data README.txt" in plan.stdout


def test_usage_errors_exit_2(migrated):
    r = cli("migrate", migrated["src"], migrated["src"] / "out")
    assert r.returncode == 2 and "inside the source tree" in r.stderr
    r = cli("migrate", migrated["src"] / "README.txt", migrated["base"] / "x")
    assert r.returncode == 2 and "not a directory" in r.stderr


def test_a_destination_reached_through_a_link_into_the_source_is_refused(tmp_path):
    """DEST that is, or runs through, a symbolic link into SRC would write into the tree it reads
    (and the next run would migrate its own outputs)."""
    src = tmp_path / "s"
    (src / "inner").mkdir(parents=True)
    (src / "x.json").write_text('{"a": 1}')
    os.symlink(src / "inner", tmp_path / "dlink")
    os.symlink(src, tmp_path / "slink")
    before = snapshot(src)
    for dest in (tmp_path / "dlink", tmp_path / "slink" / "zz"):
        r = cli("migrate", src, dest, "--quiet")
        assert r.returncode == 2 and "inside the source tree" in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
    r = cli("migrate", tmp_path / "slink", src / "inner" / "o", "--quiet")
    assert r.returncode == 2 and "inside the source tree" in r.stderr, r.stderr
    assert snapshot(src) == before and sorted(p.name for p in (src / "inner").iterdir()) == []
    r = cli("migrate", tmp_path / "nope", tmp_path / "o")
    assert r.returncode == 2 and "nope: no such directory" in r.stderr


def test_no_output_takes_the_reports_name_or_a_directory_the_outputs_need(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "d.sqlite").mkdir(parents=True)
    with open(src / "migration-report.pkl", "wb") as f:
        pickle.dump({"who": "me"}, f)
    (src / "d.json").write_text('{"w": 1}')
    (src / "d.sqlite" / "e.json").write_text('{"w": 2}')
    r = cli("migrate", src, dst, "--to", "json", "--jobs", "1", "--quiet")
    assert r.returncode == 0, r.stderr
    report = json.loads((dst / "migration-report.json").read_text())
    out = {e["store"]: e["output"] for e in report["stores"]}
    assert out["migration-report.pkl"] != "migration-report.json" and out["d.json"] != "d.sqlite"
    assert json.loads((dst / out["migration-report.pkl"]).read_text()) == {"who": "me"}
    r = cli("migrate", src, tmp_path / "dst2", "--jobs", "1", "--quiet")  # to SQLite: d.json beside d.sqlite/
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "dst2" / "migration-report.json").read_text())
    assert all(e["status"] == "ok" for e in report["stores"]) and len(report["stores"]) == 3
    assert {k: v for k, v in records(tmp_path / "dst2" / "d.sqlite" / "e.sqlite").items()} == {"w": 2}


def test_jobs_beyond_what_the_machine_can_hold_is_a_usage_error(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "x.json").write_text('{"a": 1}')
    r = cli("migrate", tmp_path / "s", tmp_path / "o", "--jobs", "100000")
    assert r.returncode == 2 and "--jobs 100000: at most" in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_a_file_that_cannot_be_read_is_reported(tmp_path):
    import converter

    (tmp_path / "src").mkdir()
    shutil.copy(FIXTURES / "py2/py2_proto2.pkl", tmp_path / "src" / "ok.pkl")
    secret = tmp_path / "src" / "secret.db"
    shutil.copy(FIXTURES / "debian/bdb_hash.db", secret)
    secret.chmod(0)
    report = converter.migrate(tmp_path / "src", tmp_path / "dst", jobs=1)
    assert [d["path"] for d in report["unreadable"]] == ["secret.db"]
    assert "ermission denied" in report["unreadable"][0]["error"]


def _group_gone(pgid: int, seconds: float = 10) -> bool:
    """Wait until no process of the group is left; whether that happened within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.02)
    return False


def test_sigint_to_the_migrating_process_alone_stops_it_at_once_and_a_rerun_completes(tmp_path):
    """`kill -INT PID` reaches no worker (a terminal's Ctrl-C reaches them all): the migration
    must still stop now, not after the stores in flight, keep what finished, and resume."""
    from converter.migration import read_report

    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    for i in range(3):  # all in flight at once (two per worker), each long enough to wait for
        with open(src / f"s{i}.jsonl", "w") as f:
            for j in range(120_000):
                f.write('{"key": "k%d", "value": {"n": %d, "s": "xxxxxxxxxxxxxxxxxxxx"}}\n' % (j, j))
    proc = subprocess.Popen([sys.executable, "-m", "converter", "migrate", src, dst, "--jobs", "2", "--quiet"],
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (read_report(dst) or {}).get("in_progress"):
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.01)
        time.sleep(0.3)  # workers are converting
        proc.send_signal(signal.SIGINT)  # this process only, not its group
        sent = time.monotonic()
        rc = proc.wait(timeout=30)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert rc == 130 and took < 2.5, (rc, took)
    assert "interrupted" in proc.stderr.read()
    assert _group_gone(proc.pid), "a worker outlived the interrupted migration by 10 s"
    doc = json.loads((dst / "migration-report.json").read_text())  # the summary counts what finished
    status = [e["status"] for e in doc["stores"]]
    assert doc["interrupted"] and doc["summary"]["converted"] == status.count("ok") < 3, doc["summary"]
    assert doc["summary"]["unfinished"] == status.count("pending") > 0, doc["summary"]
    r = cli("migrate", src, dst, "--jobs", "2", "--quiet")
    assert r.returncode == 0, r.stderr
    final = entries(json.loads((dst / "migration-report.json").read_text()))
    assert len(final) == 3 and all(e["status"] == "ok" and e["records"] == 120_000 for e in final.values())
    assert not [p for p in dst.rglob("*") if p.name.endswith((".converting", ".tmp", ".journal"))]


def test_sigkill_to_the_migrating_process_alone_leaves_no_worker_behind(tmp_path):
    """`kill -9 PID`: the pool's workers (and its forkserver) must not wait for a next task for
    ever; they end within seconds, and a rerun completes."""
    from converter.migration import read_report

    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    for i in range(4):
        with open(src / f"s{i}.jsonl", "w") as f:
            for j in range(60_000):
                f.write('{"key": "k%d", "value": {"n": %d}}\n' % (j, j))
    proc = subprocess.Popen([sys.executable, "-m", "converter", "migrate", src, dst, "--jobs", "2", "--quiet"],
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (read_report(dst) or {}).get("in_progress"):
            assert proc.poll() is None
            time.sleep(0.01)
        time.sleep(0.3)  # workers are converting
        proc.kill()  # this process only, not its group
        proc.wait()
        gone = _group_gone(proc.pid, 15)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert gone, "the workers outlived their killed migration by 15 s"
    r = cli("migrate", src, dst, "--jobs", "2", "--quiet")
    assert r.returncode == 0, r.stderr
    final = entries(json.loads((dst / "migration-report.json").read_text()))
    assert len(final) == 4 and all(e["status"] == "ok" and e["records"] == 60_000 for e in final.values())


def test_sigkill_mid_run_then_rerun_redoes_no_finished_store(tmp_path):
    from converter.migration import read_report

    src, dst = tmp_path / "src", tmp_path / "dst"
    for i in range(40):
        d = src / f"d{i % 4}"
        d.mkdir(parents=True, exist_ok=True)
        with open(d / f"s{i:02d}.pkl", "wb") as f:
            pickle.dump({f"k{j}": {"key": f"k{j}", "n": j, "s": "x" * 20} for j in range(3000)}, f)
    proc = subprocess.Popen([sys.executable, "-m", "converter", "migrate", src, dst, "--jobs", "2", "--quiet"],
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    report_path = dst / "migration-report.json"
    deadline = time.monotonic() + 60
    done = []
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                done = [e for e in (read_report(dst) or {}).get("stores", []) if e["status"] == "ok"]
            except (OSError, ValueError):
                done = []
            if done:
                break
            time.sleep(0.01)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        _group_gone(proc.pid)  # the workers too (a scratch directory of a live pid is left alone)
    assert done, "no store finished before the deadline"
    killed = read_report(dst)  # the report and the journal of what finished since it was written
    finished = {e["store"]: e for e in killed["stores"] if e["status"] == "ok"}
    assert len(finished) < 40, "the run ended before it was killed: make the stores bigger"

    r = cli("migrate", src, dst, "--jobs", "2", "--quiet")
    assert r.returncode == 0, r.stderr
    final = entries(json.loads(report_path.read_text()))
    assert len(final) == 40 and all(e["status"] == "ok" and e["verify"] == "equal" for e in final.values())
    for store, e in finished.items():
        assert final[store] == e  # same entry: same run, same finish time, not converted again
    assert sum(e["run"] == 2 for e in final.values()) == 40 - len(finished)
    assert not [p for p in dst.rglob("*") if p.name.endswith((".converting", ".tmp", ".journal"))]


def test_checksum_resume_and_stable_output_names(tmp_path):
    import converter

    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    shutil.copy(FIXTURES / "debian/bdb_hash.db", src / "s.db")
    first = converter.migrate(src, dst, jobs=1, checksum=True)
    (e,) = first["stores"]
    assert e["sources"][0]["sha256"] == hashlib.sha256((src / "s.db").read_bytes()).hexdigest()
    os.utime(src / "s.db", ns=(1, 1))  # content unchanged: up to date by checksum
    for f in ("dbm_dumb.dat", "dbm_dumb.dir"):  # a store added beside it, whose name sorts first
        shutil.copy(FIXTURES / "py313" / f, src / f.replace("dbm_dumb", "s"))
    second = converter.migrate(src, dst, jobs=1, checksum=True)
    by = entries(second)
    assert by["s.db"] == e and by["s.db"]["output"] == "s.sqlite"
    assert by["s.dat"]["output"] == "s.dat.sqlite" and by["s.dat"]["status"] == "ok"
    assert converter.migration.succeeded(second)


def crashing_task(task):
    """A task whose worker dies when its store is "boom" (imported by the pool's workers)."""
    if task["id"] == "boom":
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.05)
    return {"id": task["id"], "error": None}


def test_a_worker_that_dies_fails_only_its_store():
    from converter.migration import _run_pool

    tasks = [{"id": i, "main": f"/x/{i}", "format": "pickle"} for i in ("a", "b", "boom", "c", "d", "e")]
    results, started = [], []
    _run_pool(tasks, 2, started.extend, results.append, fn=crashing_task)
    by_id = {r["id"]: r for r in results}
    assert sorted(by_id) == sorted(t["id"] for t in tasks) and len(results) == len(tasks)
    assert "worker process converting it died" in by_id["boom"]["error"]
    assert all(by_id[i]["error"] is None for i in "abcde")


def dies_once_after_converting(task):
    """run_task, whose worker dies the first time, after its store's output is in place."""
    from converter.migration import run_task

    out = run_task(task)
    marker = Path(task["output"] + ".died")
    if task["id"] == "victim" and not marker.exists():
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return out


def test_stores_in_flight_when_a_worker_dies_are_redone_over_the_outputs_this_run_made(tmp_path):
    """The worker died after renaming its output into place (while verifying): the retry must
    replace that output (this run made it), not fail with "output exists; use --force"."""
    from converter.migration import _run_pool

    tasks = []
    for i in ("victim", "b", "c", "d"):
        (tmp_path / f"{i}.json").write_text(json.dumps({"k": i}))
        tasks.append({"id": i, "main": str(tmp_path / f"{i}.json"), "format": "json",
                      "output": str(tmp_path / "out" / f"{i}.sqlite"), "to": "sqlite", "verify": True,
                      "force": False, "existed": False, "options": {}})
    results = []
    _run_pool(tasks, 2, lambda ids: None, results.append, fn=dies_once_after_converting)
    by_id = {r["id"]: r for r in results}
    assert sorted(by_id) == ["b", "c", "d", "victim"]
    assert all(r["error"] is None and r["verify"] == "equal" and r["records"] == 1 for r in by_id.values()), by_id
    assert (tmp_path / "out" / "victim.sqlite.died").exists()  # it did die once


def _comparable(report, dst):
    keep = ("store", "sources", "format", "output", "records", "codecs", "verify", "status", "error")
    return [{k: (e[k].replace(str(dst), "DST") if isinstance(e[k], str) else e[k]) for k in keep}
            for e in report["stores"]]


def test_a_local_dask_cluster_gives_the_same_report_as_jobs_2(migrated):
    distributed = pytest.importorskip("distributed")
    dst = migrated["base"] / "cluster"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster:
        r = cli("migrate", migrated["src"], dst, "--scheduler", cluster.scheduler_address, "--quiet")
    assert r.returncode == 1, r.stderr
    report = json.loads((dst / "migration-report.json").read_text())
    assert report["cluster"]["workers"] == 2
    assert _comparable(report, dst) == _comparable(migrated["report"], migrated["dst"])
    assert report["not_data"] == migrated["report"]["not_data"]


def test_an_unreachable_scheduler_writes_nothing_and_exits_1(tmp_path):
    pytest.importorskip("distributed")
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "x.json").write_text('{"a": 1}')
    r = cli("migrate", tmp_path / "s", tmp_path / "o", "--scheduler", "tcp://127.0.0.1:1", "--quiet")
    assert r.returncode == 1 and "cannot connect" in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
    assert not (tmp_path / "o").exists()


def test_a_dbm_dumb_index_without_its_values_is_an_error_and_a_lone_values_file_is_named(tmp_path):
    """NAME.dir without NAME.dat holds keys whose records cannot arrive: not junk to list and
    pass over, but a store that cannot be migrated (exit 1), in migrate and in convert."""
    src = tmp_path / "s"
    src.mkdir()
    for name in ("a", "b", "c"):
        with dbm.dumb.open(str(src / name), "n") as db:
            db[b"k"] = b"v"
    (src / "a.dat").unlink()
    (src / "b.dir").unlink()
    for p in src.glob("[ab].bak"):
        p.unlink()
    r = cli("migrate", src, tmp_path / "o", "--quiet")
    assert r.returncode == 1
    report = json.loads((tmp_path / "o" / "migration-report.json").read_text())
    assert [u["path"] for u in report["unreadable"]] == ["a.dir"] and "a.dat, is missing" in report["unreadable"][0]["error"]
    assert [d["path"] for d in report["not_data"]] == ["b.dat"] and "b.dir is missing" in report["not_data"][0]["reason"]
    assert [e["store"] for e in report["stores"]] == ["c.dat"] and report["stores"][0]["status"] == "ok"
    r = cli("convert", src / "a.dir", tmp_path / "x.json")
    assert r.returncode == 1 and "a.dat, is missing" in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr


def test_a_second_migration_into_a_busy_destination_is_refused(tmp_path):
    """Two runs into one DEST would interleave their outputs and overwrite each other's report."""
    from converter.migration import read_report

    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    for i in range(3):
        with open(src / f"s{i}.jsonl", "w") as f:
            for j in range(60_000):
                f.write('{"key": "k%d", "value": %d}\n' % (j, j))
    first = subprocess.Popen([sys.executable, "-m", "converter", "migrate", src, dst, "--jobs", "1", "--quiet"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (read_report(dst) or {}).get("in_progress"):
            assert first.poll() is None, first.stderr.read()
            time.sleep(0.01)
        second = cli("migrate", src, dst, "--jobs", "1", "--quiet")
        assert first.poll() is None, "the first run ended before the second started: make the stores bigger"
    finally:
        rc = first.wait(timeout=120)
    assert second.returncode == 1 and "another migration is writing to this destination" in second.stderr
    assert len(second.stderr.splitlines()) == 1, second.stderr
    assert rc == 0, first.stderr.read()
    final = entries(json.loads((dst / "migration-report.json").read_text()))
    assert len(final) == 3 and all(e["status"] == "ok" and e["records"] == 60_000 for e in final.values())
    assert cli("migrate", src, dst, "--jobs", "1", "--quiet").returncode == 0  # the lock went with the run


def test_a_database_of_several_tables_fails_with_the_commands_that_convert_it(tmp_path):
    import sqlite3

    src = tmp_path / "src"
    src.mkdir()
    with sqlite3.connect(src / "app.db") as db:
        db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        db.execute("CREATE TABLE posts (id INTEGER PRIMARY KEY, body TEXT)")
    db.close()
    r = cli("migrate", src, tmp_path / "o", "--to", "json", "--quiet")
    assert r.returncode == 1
    [entry] = json.loads((tmp_path / "o" / "migration-report.json").read_text())["stores"]
    assert "--table" in entry["error"] and f"convert {src / 'app.db'} OUTPUT --table NAME" in entry["error"]
    assert "posts" in entry["error"] and "users" in entry["error"]
    r = cli("convert", src / "app.db", tmp_path / "x.json")  # convert's own answer is unchanged
    assert r.returncode == 1 and "pick one with --table" in r.stderr


def test_quiet_hides_the_table_not_the_errors(tmp_path):
    src = tmp_path / "s"
    src.mkdir()
    (src / "good.pkl").write_bytes(pickle.dumps({"a": 1}))
    (src / "bad.pkl").write_bytes(pickle.dumps({"a": 1})[:-4])
    r = cli("migrate", src, tmp_path / "o", "--quiet")
    assert r.returncode == 1 and r.stdout == ""
    [line] = r.stderr.splitlines()
    assert line.startswith("convert: error: ") and "bad.pkl" in line and "truncated" in line, r.stderr


def test_a_rerun_with_other_options_converts_again_and_says_why(tmp_path):
    """The options that shape an output are part of what makes an entry up to date."""
    src = tmp_path / "s"
    shutil.copytree(FIXTURES / "py2", src, ignore=shutil.ignore_patterns("*.pkl", "*raw*", "*_p0*"))
    dst = tmp_path / "o"
    assert cli("migrate", src, dst, "--value-codec", "raw", "--quiet").returncode == 0
    [entry] = json.loads((dst / "migration-report.json").read_text())["stores"]
    assert entry["codecs"]["value"] == "raw" and entry["settings"]["value_codec"] == "raw"
    r = cli("migrate", src, dst, "--dry-run")
    assert r.returncode == 0 and "(the options changed" in r.stdout, r.stdout
    assert cli("migrate", src, dst, "--quiet").returncode == 0
    [entry] = json.loads((dst / "migration-report.json").read_text())["stores"]
    assert entry["codecs"]["value"] == "pickle" and entry["run"] == 2 and entry["settings"]["value_codec"] is None
    assert dict(records(dst / entry["output"])) == expected.PY2_SHELVE_VALUES
    r = cli("migrate", src, dst, "--dry-run")  # the same options again: up to date
    assert r.returncode == 0 and r.stdout.startswith("skip ") and "up to date" in r.stdout, r.stdout


def test_allow_and_trust_are_migrate_options_and_the_advice_names_them(tmp_path):
    src, lib = tmp_path / "s", tmp_path / "lib"
    src.mkdir()
    lib.mkdir()
    (lib / "geom.py").write_text("class Point:\n    def __init__(self, x):\n        self.x = x\n"
                                 "    def __eq__(self, o):\n        return vars(self) == vars(o)\n")
    subprocess.run([sys.executable, "-c", "import shelve, geom\nwith shelve.open(%r, 'n') as s: s['p'] = geom.Point(3)"
                    % str(src / "shapes")], env={**os.environ, "PYTHONPATH": str(lib)}, check=True)
    r = cli("migrate", src, tmp_path / "o", "--to", "pickle", "--quiet")
    assert r.returncode == 1 and "--allow geom.Point" in r.stderr, r.stderr
    env = {**os.environ, "COLUMNS": "200", "PYTHONPATH": str(lib)}
    for flags in (["--allow", "geom.Point"], ["--trust"]):
        dst = tmp_path / ("o" + flags[0])
        r = subprocess.run([sys.executable, "-m", "converter", "migrate", src, dst, "--to", "pickle", "-q", *flags],
                           capture_output=True, text=True, env=env, timeout=120)
        assert r.returncode == 0, r.stderr
        [entry] = json.loads((dst / "migration-report.json").read_text())["stores"]
        assert entry["verify"] == "equal" and entry["records"] == 1


def test_a_berkeley_db_file_of_several_databases_fails_with_the_commands_that_convert_it(tmp_path):
    src = tmp_path / "s"
    src.mkdir()
    shutil.copy(FIXTURES / "bdb" / "multi.db", src / "multi.db")
    r = cli("migrate", src, tmp_path / "o", "--quiet")
    assert r.returncode == 1
    [entry] = json.loads((tmp_path / "o" / "migration-report.json").read_text())["stores"]
    assert f"convert {src / 'multi.db'} OUTPUT --database NAME" in entry["error"], entry["error"]
    assert "'alpha'" in entry["error"] and "'beta'" in entry["error"]


def test_links_that_lead_nowhere_are_listed_never_errors(tmp_path):
    src = tmp_path / "s"
    src.mkdir()
    (src / "good.pkl").write_bytes(pickle.dumps({"a": 1}))
    (src / "loopA").symlink_to("loopB")
    (src / "loopB").symlink_to("loopA")
    (src / "self").symlink_to("self")
    (src / "dangling").symlink_to("nowhere")
    r = cli("migrate", src, tmp_path / "o", "--quiet")
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "o" / "migration-report.json").read_text())
    assert report["unreadable"] == []
    assert {d["path"] for d in report["not_data"]} == {"loopA", "loopB", "self", "dangling"}
    assert all("not followed" in d["reason"] for d in report["not_data"])


def test_a_dry_run_says_what_the_real_run_would_refuse_and_exits_as_it_would(tmp_path):
    src, dst = tmp_path / "s", tmp_path / "o"
    src.mkdir()
    dst.mkdir()
    (src / "a.pkl").write_bytes(pickle.dumps({"a": 1}))
    (src / "b.pkl").write_bytes(pickle.dumps({"b": 1}))
    (dst / "a.sqlite").write_bytes(b"someone else's file")
    r = cli("migrate", src, dst, "--dry-run")
    assert r.returncode == 1, r.stderr
    assert "refuse   a.pkl (pickle) -> a.sqlite: a file this destination's report did not make is there" in r.stdout
    assert "convert  b.pkl (pickle) -> b.sqlite" in r.stdout and "1 refused" in r.stderr
    real = cli("migrate", src, dst, "--quiet")
    assert real.returncode == 1 and "a.sqlite: output exists; use --force" in real.stderr
    assert (dst / "a.sqlite").read_bytes() == b"someone else's file"
    with dbm.dumb.open(str(src / "idx"), "n") as db:  # an index without its values: unreadable
        db[b"k"] = b"v"
    (src / "idx.dat").unlink()
    r = cli("migrate", src, dst, "--dry-run", "--force")
    assert r.returncode == 1 and "unreadable idx.dir" in r.stdout, r.stdout
    (src / "idx.dir").unlink()
    assert cli("migrate", src, dst, "--dry-run", "--force").returncode == 0


@pytest.mark.skipif(importlib.util.find_spec("_gdbm") is not None, reason="this Python can write dbm.gnu")
def test_a_format_this_python_cannot_write_is_a_usage_error_before_planning(tmp_path):
    src = tmp_path / "s"
    src.mkdir()
    (src / "a.pkl").write_bytes(pickle.dumps({"a": 1}))
    r = cli("migrate", src, tmp_path / "o", "--to", "dbm.gnu")
    assert r.returncode == 2 and "--to dbm.gnu: this Python" in r.stderr and "_gdbm" in r.stderr, r.stderr
    assert not (tmp_path / "o").exists()


def test_a_name_that_is_not_utf8_gives_a_report_strict_readers_take_and_resumes(tmp_path):
    src, dst = tmp_path / "s", tmp_path / "o"
    src.mkdir()
    name = os.fsdecode(b"bad\xffname.pkl")
    (src / name).write_bytes(pickle.dumps({"a": 1}))
    assert cli("migrate", src, dst, "--quiet").returncode == 0
    raw = (dst / "migration-report.json").read_bytes()
    assert "\\udc" not in raw.decode("utf-8")  # no lone surrogate escapes: any JSON reader takes it
    [entry] = json.loads(raw)["stores"]
    assert entry["store"] == "bad\\xffname.pkl" and bytes.fromhex(entry["store_hex"]) == b"bad\xffname.pkl"
    assert bytes.fromhex(entry["sources"][0]["path_hex"]) == b"bad\xffname.pkl"
    r = cli("convert", dst / "migration-report.json", tmp_path / "r.jsonl", "-q")  # this tool reads it too
    assert r.returncode == 0, r.stderr
    assert (dst / os.fsdecode(b"bad\xffname.sqlite")).exists()
    r = cli("migrate", src, dst, "--dry-run")
    assert r.returncode == 0 and "up to date" in r.stdout, r.stdout


def _children_of(pid: int) -> list[str]:
    out = subprocess.run(["ps", "-o", "args=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return out.splitlines()


@pytest.mark.parametrize("after", [0.0, 0.05, 0.15, 0.4])
def test_ctrl_c_to_the_whole_group_while_the_pool_starts_is_one_line(tmp_path, after):
    """A terminal's Ctrl-C reaches the forkserver and the workers too, at any moment: while the
    server's interpreter starts, while it imports, while workers detect. One line, no traceback."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(1500):
        (src / f"d{i}.json").write_text('{"k": %d}' % i)
        (src / f"t{i}.txt").write_text("hello\n")
    proc = subprocess.Popen([sys.executable, "-m", "converter", "migrate", src, tmp_path / "dst", "--jobs", "2", "-q"],
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 60
        while not any("forkserver" in c for c in _children_of(proc.pid)):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.005)
        time.sleep(after)
        os.killpg(proc.pid, signal.SIGINT)
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    err = proc.stderr.read()
    # -2: killed by the SIGINT after saying so (a shell shows 130 either way), seen once under load
    assert rc in (0, 130, -2) and "Traceback" not in err and len(err.splitlines()) <= 1, (rc, err)


def test_a_report_this_version_cannot_read_is_refused_not_overwritten(tmp_path):
    src, dst = tmp_path / "s", tmp_path / "o"
    src.mkdir()
    (src / "a.pkl").write_bytes(pickle.dumps({"a": 1}))
    assert cli("migrate", src, dst, "-q").returncode == 0
    report = dst / "migration-report.json"
    good = json.loads(report.read_text())
    for text, says in (("garbage", "cannot read the report of the earlier migration: not JSON"),
                       (json.dumps({**good, "version": 99}), "a report of version 99")):
        report.write_text(text)
        for args in (["--dry-run"], ["-q"]):
            r = cli("migrate", src, dst, *args)
            [line] = r.stderr.strip().splitlines()
            assert r.returncode == 1 and line.startswith(f"convert: error: {report}: {says}"), r.stderr
            assert "--force" in r.stderr and report.read_text() == text  # left as it was
    r = cli("migrate", src, dst, "-q", "--force")  # the way out it names
    assert r.returncode == 0 and json.loads(report.read_text())["version"] == good["version"], r.stderr


def test_a_dry_run_refuses_a_destination_the_run_would_refuse(tmp_path):
    src = tmp_path / "s"
    src.mkdir()
    (src / "a.pkl").write_bytes(pickle.dumps({"a": 1}))
    (tmp_path / "afile").write_text("x")
    for args in (["--dry-run"], []):
        r = cli("migrate", src, tmp_path / "afile" / "o", *args)
        assert r.returncode == 2 and f"{tmp_path / 'afile'} is not a directory" in r.stderr, r.stderr


def test_the_py2_strings_advice_in_migrate_is_for_the_one_store(tmp_path):
    src = tmp_path / "s"
    src.mkdir()
    shutil.copy(FIXTURES / "py2" / "py2_latin1.pkl", src / "latin.pkl")
    r = cli("migrate", src, tmp_path / "o", "-q")
    assert r.returncode == 1
    assert f"convert this one alone with `convert {src / 'latin.pkl'} OUTPUT --py2-strings latin1`" in r.stderr, r.stderr


def test_a_shelve_values_file_without_its_index_says_the_index_is_missing(tmp_path):
    src = tmp_path / "s"
    src.mkdir()
    shutil.copy(FIXTURES / "py2" / "py2_dumbdbm_shelve.dat", src / "shelf.dat")  # its .dir and .bak lost
    r = cli("migrate", src, tmp_path / "o", "-q")
    report = json.loads((tmp_path / "o" / "migration-report.json").read_text())
    said = [e.get("error") or "" for e in report["stores"]] + [d["reason"] for d in report["not_data"]]
    assert any("its index shelf.dir is missing" in s for s in said), (r.stderr, said)
