"""Migrate a whole tree: plan, convert and verify every store, report, resume.

    >>> import converter
    >>> report = converter.migrate("legacy/", "migrated/", to="sqlite", jobs=2)

The plan (``converter.tree.scan``) finds every store under SRC by content; each is converted to
the same relative path under DEST with the new extension, then verified (``verify.compare``),
by ``run_task`` -- a plain function of a plain dict, returning a plain dict, so it runs the same
in this process (``jobs=1``), in a ``ProcessPoolExecutor`` (``jobs>1``: one store per task, a
worker that dies fails only its store) or on a Dask cluster (``scheduler=ADDRESS``, through
``distributed.Client.get_executor()``). One store's failure never stops the others.

The report, ``DEST/migration-report.json``, is written atomically (a temporary file, then
``os.replace``) after each finished store, so a run killed by SIGKILL loses only the stores in
flight; a rerun skips every store whose entry is ``ok``, whose source files still have the
fingerprint it records (size and mtime_ns of each file, and sha256 with ``checksum``) and whose
output is still there.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

from .errors import ChoiceNeededError, ConverterError
from .options import Options

REPORT_NAME = "migration-report.json"
JOURNAL_NAME = ".migration-report.journal"  # what finished since the report was last rewritten
REPORT_VERSION = 1
JOBS_PER_CORE = 16  # --jobs allowed per core (stores on slow shared storage wait more than they compute)
WINDOW = 2  # tasks in flight per job: enough to keep every worker busy, few to redo after a crash

# options a task carries to its worker (the rest are the conversion's own state)
_PASSED_OPTIONS = ("key_codec", "value_codec", "py2_strings", "allow", "trust", "table", "database",
                   "budget", "pickle_protocol", "json_style", "layout", "pk", "dbm")


class MigrationError(ConverterError):
    """A migration that cannot start: SRC is not a directory, DEST inside SRC, a bad option."""


class BusyError(ConverterError):
    """Another migration holds DEST."""


class ClusterError(ConverterError):
    """The Dask scheduler given with ``scheduler`` cannot be reached (nothing is written then)."""


# -- the task: runs in a worker ------------------------------------------------------------------

_CODEC_NOTE = re.compile(r": (key|value)s read as (\S+) \(")


def run_task(task: dict) -> dict:
    """Convert one store and verify it; never raises for the store's own failure.

    ``task``: {"id", "main", "format", "output", "to", "verify", "force", "options": {...}}.
    Returns {"id", "records", "format", "codecs", "notes", "verify", "seconds", "error"}.
    """
    from .errorpolicy import answer
    from .pipeline import convert

    started = time.perf_counter()
    out = {"id": task["id"], "records": None, "format": task["format"], "codecs": {}, "notes": [],
           "verify": None, "seconds": 0.0, "error": None}
    # a verified store's automatic choices keep every record exactly (SQLite: no added key column)
    options = Options(**task["options"], force=task["force"], lossless=bool(task["verify"]))
    try:
        output = Path(task["output"])
        output.parent.mkdir(parents=True, exist_ok=True)
        result = convert(task["main"], output, from_=task["format"], to=task["to"], options=options)
        out["records"], out["format"] = result.records, result.source_format
        out["notes"] = list(result.notes)
        out["codecs"] = _codecs(result.notes, options)
        if task["verify"]:
            from .verify import compare, describe_differences

            opts = replace(options, notes=[], on_note=None, codec_exclusions=set(options.codec_exclusions))
            comparison = compare(task["main"], output, format_a=result.source_format, format_b=result.sink_format,
                                 options=opts)
            if comparison.equal:
                out["verify"] = "equal"
            else:
                lines = describe_differences(comparison, task["main"], output, format_a=result.source_format,
                                             format_b=result.sink_format, options=opts)
                out["verify"] = "different"
                out["error"] = (f"verification failed: {output} does not hold the same records (it is kept for "
                                f"inspection; a rerun converts the store again): "
                                + "; ".join(line.strip() for line in lines[1:4]))
        else:
            out["verify"] = "skipped"
    except ChoiceNeededError as exc:  # migrate has no --table or --database: say what to run instead
        out["error"] = (f"{exc}; migrate cannot choose for you: convert each with "
                        f"`convert {task['main']} OUTPUT {exc.option} NAME`")
    except ConverterError as exc:
        out["error"] = str(exc)
        if "--py2-strings latin1" in out["error"]:
            # for the whole tree it would turn the UTF-8 strings of every other store into mojibake
            out["error"] += (f"; in migrate it would apply to every store: convert this one alone with "
                             f"`convert {task['main']} OUTPUT --py2-strings latin1`")
    except (OSError, MemoryError, RecursionError) as exc:
        out["error"] = answer(exc)[0]
    except Exception as exc:  # a bug or a plugin's: this store fails, the others go on
        out["error"] = f"internal error: {type(exc).__name__}: {exc}"
    out["seconds"] = round(time.perf_counter() - started, 6)
    return out


def _codecs(notes, options) -> dict:
    found = {"key": options.key_codec, "value": options.value_codec}
    for note in notes:
        m = _CODEC_NOTE.search(note)
        if m:
            found[m.group(1)] = m.group(2)
    return {k: v for k, v in found.items() if v}


# -- fingerprints and the report -----------------------------------------------------------------

def fingerprint(parts, root: Path, checksum: bool) -> list[dict]:
    """Per source file: path (relative to ``root``), size, mtime_ns (and sha256)."""
    out = []
    for p in sorted(parts, key=str):
        st = os.stat(p)
        entry = {"path": p.relative_to(root).as_posix(), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                 "mtime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(st.st_mtime))}
        if checksum:
            h = hashlib.sha256()
            with open(p, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            entry["sha256"] = h.hexdigest()
        out.append(entry)
    return out


def _same_source(old: list, new: list) -> bool:
    # with checksums, the content decides (as rsync --checksum): a copy that lost its mtimes is
    # still up to date, an edit that kept size and mtime is not
    keys = ("path", "size", "sha256") if new and "sha256" in new[0] else ("path", "size", "mtime_ns")
    if len(old) != len(new):
        return False
    return all(all(o.get(k) == n.get(k) for k in keys) for o, n in zip(old, new))


def _settings(passed: dict) -> dict:
    """The options that shape a store's output, as the report keeps them (JSON values)."""
    def plain(v):
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        if isinstance(v, (tuple, list, set, frozenset)):
            return sorted(map(str, v)) if isinstance(v, (set, frozenset)) else [plain(x) for x in v]
        return repr(v)  # a Budget: its dataclass repr names every limit
    return {k: plain(v) for k, v in sorted(passed.items())}


def _redo(old, force, out_rel, fp, outputs, verify, settings) -> str | None:
    """Why a store is converted again this run (None: its earlier entry is up to date)."""
    if force:
        return "--force"
    if not old:
        return "new"
    if old.get("status") != "ok":
        return "failed before" if old.get("status") == "failed" else "not finished before"
    if old.get("output") != out_rel:
        return "its output name changed"
    if not _same_source(old.get("sources", []), fp):
        return "its source files changed"
    if not all(o.exists() for o in outputs):
        return "its output is gone"
    if verify and old.get("verify") != "equal":
        return "not verified before"
    # an entry from before settings were recorded was made with the defaults
    before = old.get("settings")
    if before is None:
        before = _settings({k: getattr(Options(), k) for k in _PASSED_OPTIONS})
    if before != settings:
        return "the options changed (codecs, --py2-strings, --budget, ...)"
    return None


# -- names that are not UTF-8 ------------------------------------------------------------------
# A file name of bytes that are not UTF-8 is a str with lone surrogates here (surrogateescape),
# which strict JSON readers refuse. The report writes such a str as text with \xNN escapes and,
# for the names a rerun must match exactly, the name's bytes in hex beside it ("store_hex").

_EXACT_NAMES = ("store", "output", "path")


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _portable(value):
    """``value`` with every str that is not UTF-8 shown with backslash escapes (JSON any reader takes)."""
    if isinstance(value, str):
        if _utf8(value):
            return value
        try:
            return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:  # a surrogate no file name holds
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out[k] = _portable(v)
            if k in _EXACT_NAMES and isinstance(v, str) and not _utf8(v):
                with contextlib.suppress(UnicodeEncodeError):
                    out[f"{k}_hex"] = v.encode("utf-8", "surrogateescape").hex()
        return out
    if isinstance(value, list):
        return [_portable(v) for v in value]
    return value


def _dumps(value, **kw) -> str:
    text = json.dumps(value, ensure_ascii=True, **kw)
    return json.dumps(_portable(value), ensure_ascii=True, **kw) if "\\udc" in text else text


def _exact(entry):
    """An entry as read back: each name given in hex is the name again."""
    if isinstance(entry, dict):
        for k in _EXACT_NAMES:
            raw = entry.pop(f"{k}_hex", None)
            if isinstance(raw, str):
                try:
                    entry[k] = bytes.fromhex(raw).decode("utf-8", "surrogateescape")
                except ValueError:
                    pass
        for source in entry.get("sources") or ():
            _exact(source)
    return entry


class ReportError(ConverterError):
    """DEST holds a report this version cannot read (damaged, or written by a newer version)."""


def read_report(dest) -> dict | None:
    """The report of an earlier run into ``dest`` with its journal replayed (what a killed run
    finished after the report was last rewritten), or None when there is none. A report that is
    there but cannot be read raises ``ReportError``: starting afresh over it would lose what it
    says and take the outputs it made for someone else's files."""
    dest = Path(dest)
    where = dest / REPORT_NAME
    try:
        with open(where, encoding="utf-8") as f:
            report = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else f"not JSON ({exc})"
        raise ReportError(f"{where}: cannot read the report of the earlier migration: {why}; move it away, "
                          f"or use --force to migrate every store again and replace it") from None
    if not (isinstance(report, dict) and report.get("version") == REPORT_VERSION):
        version = report.get("version") if isinstance(report, dict) else None
        raise ReportError(f"{where}: a report of version {version!r}, and this converter-toolkit reads version "
                          f"{REPORT_VERSION}; use the converter-toolkit that wrote it, move it away, or use --force "
                          f"to migrate every store again and replace it")
    report["stores"] = [_exact(e) for e in report.get("stores", []) if isinstance(e, dict)]
    try:
        with open(dest / JOURNAL_NAME, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return report
    stores = {e.get("store"): e for e in report["stores"]}
    in_progress = list(report.get("in_progress", []))
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue  # the last line of a run killed while writing it
        if isinstance(event.get("start"), list):
            in_progress.extend(i for i in event["start"] if i not in in_progress)
        elif isinstance(event.get("done"), dict) and "store" in event["done"]:
            stores[event["done"]["store"]] = _exact(event["done"])
            if event["done"]["store"] in in_progress:
                in_progress.remove(event["done"]["store"])
    report["stores"] = [stores[k] for k in sorted(stores, key=str)]
    report["in_progress"] = in_progress
    return report


class _Report:
    """The report being written. The file is rewritten whole (a temporary file, then
    os.replace) at most every ``INTERVAL`` seconds and at the end; in between, each store
    started or finished is one line appended to the journal beside it, so a kill loses nothing
    but the stores in flight and a run of many stores does not rewrite the report per store.
    Each finished entry is serialised once."""

    INTERVAL = 2.0

    def __init__(self, path: Path, head: dict):
        self.path, self.head = path, head
        self.journal = path.with_name(JOURNAL_NAME)
        self.entries: dict[str, dict] = {}
        self._texts: dict[str, str] = {}
        self.in_progress: list[str] = []
        self.seconds = 0.0  # spent writing it
        self._fd = None
        self._written = 0.0

    def set(self, entry: dict) -> None:
        self.entries[entry["store"]] = entry
        self._texts[entry["store"]] = _dumps(entry)

    def document(self) -> dict:
        return {**self.head, "in_progress": list(self.in_progress),
                "stores": [self.entries[k] for k in sorted(self.entries)]}

    def write(self) -> None:
        t = time.perf_counter()
        head = _dumps({**self.head, "in_progress": list(self.in_progress)}, indent=1)
        stores = ",\n  ".join(self._texts[k] for k in sorted(self._texts))
        text = head[:-2] + ',\n "stores": [\n  ' + stores + "\n ]\n}\n"
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, self.path)
        except OSError as exc:  # named after the report, not its temporary file
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise OSError(exc.errno, exc.strerror, str(self.path)) from None
        if self._fd is None:
            self._fd = os.open(self.journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.ftruncate(self._fd, 0)  # all it held is in the report now (replaying it twice is harmless)
        self._written = time.monotonic()
        self.seconds += time.perf_counter() - t

    def log(self, event: dict) -> None:
        """One line in the journal (one write call), then the report if it is due."""
        t = time.perf_counter()
        os.write(self._fd, (_dumps(event) + "\n").encode("ascii"))
        self.seconds += time.perf_counter() - t
        if time.monotonic() - self._written >= self.INTERVAL:
            self.write()

    def close(self) -> None:
        self.write()
        os.close(self._fd)
        self._fd = None
        try:
            os.unlink(self.journal)
        except OSError:
            pass


# -- the engine ------------------------------------------------------------------------------------

def migrate(src, dest, *, to: str = "sqlite", jobs: int | None = None, verify: bool = True, force: bool = False,
            dry_run: bool = False, checksum: bool = False, scheduler: str | None = None,
            options: Options | None = None, registry=None,
            on_event: Callable[[str, dict], None] | None = None) -> dict:
    """Migrate every store under ``src`` to ``dest``; return the report (also written to
    ``dest/migration-report.json`` unless ``dry_run``).

    ``jobs``: worker processes (default: the number of cores; 1 runs in this process).
    ``scheduler``: a Dask scheduler address; the tasks go to its workers, which must see
    ``src`` and ``dest`` at the same paths. ``on_event(kind, data)`` is told of "plan"
    (the report before any store runs), "start" (a task id), "done" (a store's entry).
    Raises ``MigrationError`` when the migration cannot start; a store's failure is in its entry.
    """
    from .registry import get_registry

    registry = registry or get_registry()
    options = options or Options()
    src_path, dest_path = Path(os.path.abspath(src)), Path(os.path.abspath(dest))
    if not src_path.is_dir():
        raise MigrationError(f"{src}: no such directory" if not os.path.lexists(src_path) else f"{src}: not a directory")
    # where the paths really are: a DEST that is (or runs through) a symbolic link into SRC
    # would write into the tree it reads, and the next run would migrate its own outputs
    real_src, real_dest = Path(os.path.realpath(src_path)), Path(os.path.realpath(dest_path))
    if real_dest == real_src or real_src in real_dest.parents:
        raise MigrationError(f"{dest}: the destination is inside the source tree; choose a directory outside {src}")
    if real_dest in real_src.parents:
        raise MigrationError(f"{dest}: the destination contains the source tree; choose a directory beside it")
    if dest_path.exists() and not dest_path.is_dir():
        raise MigrationError(f"{dest}: not a directory")
    _check_dest_place(dest, dest_path)  # a dry run too: it must not approve what the run refuses
    sink = registry.format(to)
    missing = sink.missing_for_writing()
    if missing:  # refused before planning, not once per store
        raise MigrationError(f"--to {sink.name}: this Python ({sys.executable}) cannot write it: {missing}")
    from .pipeline import check_codec_names

    check_codec_names(options, registry)
    jobs = jobs or _cores()
    if jobs < 1:
        raise MigrationError(f"--jobs {jobs}: give at least 1")
    most = max(32, _cores() * JOBS_PER_CORE)
    if jobs > most and not scheduler:
        # each job is a process of its own (tens of MB): a typo of a number must not exhaust memory
        raise MigrationError(f"--jobs {jobs}: at most {most} on this machine ({_cores()} cores)")

    started_wall = time.time()
    t0 = time.perf_counter()
    # the workers start (and import the readers) as the plan's detection gives them work, in
    # threads of their own, while this thread detects too (_share); more start for the stores
    pool = _pool(jobs) if jobs > 1 and not scheduler and not dry_run else None
    # the cluster is reached before anything is written: an unreachable one leaves DEST as it was
    client = _connect(scheduler) if scheduler and not dry_run else None
    try:
        return _migrate(src, dest, src_path, dest_path, sink, jobs, verify, force, dry_run, checksum,
                        (client, scheduler), options, registry, on_event, started_wall, t0, pool)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        if client is not None:
            client.close()


def _migrate(src, dest, src_path, dest_path, sink, jobs, verify, force, dry_run, checksum, cluster, options,
             registry, on_event, started_wall, t0, pool) -> dict:
    try:
        previous = read_report(dest_path) or {}
    except ReportError:
        if not force:
            raise
        previous = {}  # --force: every store again, and a new report over the old one
    tree, pool = _plan_tree(src_path, registry, pool, jobs)
    old_entries = {e["store"]: e for e in previous.get("stores", []) if isinstance(e, dict) and "store" in e}
    interrupted = set(previous.get("in_progress", []))
    ext = sink.extensions[0] if sink.extensions else "." + sink.name
    known = {e.lower() for f in registry for e in f.extensions} | {".dat", ".dir", ".pag", ".bak", ".db"}
    run = int(previous.get("runs", 0)) + 1

    report = _Report(dest_path / REPORT_NAME, {
        "version": REPORT_VERSION, "tool": f"converter-toolkit {_version()}", "source": str(src_path),
        "dest": str(dest_path), "to": sink.name, "verify": verify, "checksum": checksum, "runs": run,
        "started": _iso(started_wall), "finished": None, "dry_run": dry_run,
        "not_data": tree.not_data, "unreadable": tree.unreadable, "summary": None,
    })
    # names no store's output may take: the report's own, and every directory the outputs go in
    # (a.json -> a.sqlite beside a directory a.sqlite/ of stores would collide with it)
    outputs_taken = {REPORT_NAME.lower(), JOURNAL_NAME.lower()}
    for store in tree.stores:
        outputs_taken.update(d.as_posix().lower() for d in Path(store.rel(src_path)).parents if d.parts)
    tasks, plan = [], []
    # a store keeps the output name an earlier run gave it, so a store added beside it later
    # (s.dat next to s.db) cannot take that name and the outputs never swap
    kept = {}
    if previous.get("to") == sink.name:
        for store in tree.stores:
            old = old_entries.get(store.rel(src_path))
            name = old.get("output") if old else None
            if isinstance(name, str) and name.lower() not in outputs_taken and _inside(name):
                kept[store.rel(src_path)] = name
                outputs_taken.add(name.lower())
    passed = {k: getattr(options, k) for k in _PASSED_OPTIONS}
    settings = _settings(passed)
    for store in tree.stores:
        sid = store.rel(src_path)
        out_rel = kept.get(sid) or _output_name(sid, ext, known, outputs_taken)
        output = dest_path / out_rel
        try:
            fp = fingerprint(store.parts, src_path, checksum)
        except OSError as exc:
            fp = []
            tree.unreadable.append({"path": sid, "error": f"{store.main}: {exc.strerror or exc}"})
            continue
        entry = {"store": sid, "sources": fp, "format": store.format, "detected": store.reason,
                 "output": out_rel, "settings": settings, "records": None, "codecs": {}, "notes": [],
                 "verify": None, "seconds": None, "error": None, "status": "pending", "run": run, "finished": None}
        old = old_entries.get(sid)
        outputs = sink.parts(output)
        why = _redo(old, force, out_rel, fp, outputs, verify, settings)
        if why is None:
            report.set(old)
            plan.append({"store": sid, "action": "skip", "why": "up to date (same fingerprint, output present)",
                         "format": store.format, "output": out_rel})
            continue
        # an output this destination's report knows (an earlier or interrupted run made it) is
        # replaced; any other file under the output's name needs --force
        replace_ok = force or old is not None or sid in interrupted
        existed = not replace_ok and any(o.exists() for o in outputs)
        if existed:  # the conversion will refuse it: the plan (a dry run) says so
            plan.append({"store": sid, "action": "refuse", "format": store.format, "output": out_rel,
                         "why": "a file this destination's report did not make is there; use --force to replace it"})
        else:
            plan.append({"store": sid, "action": "convert", "format": store.format, "output": out_rel,
                         "files": [s["path"] for s in fp], "why": why})
        report.set(entry)
        tasks.append({"id": sid, "main": str(store.main), "format": store.format, "output": str(output),
                      "to": sink.name, "verify": verify, "force": replace_ok, "options": passed,
                      # a retry may replace an output only this run made (its worker died verifying it)
                      "existed": existed})
    report.head["plan_seconds"] = round(time.perf_counter() - t0, 6)
    if dry_run:
        doc = report.document()
        doc["plan"] = plan
        doc["stores"] = []
        doc["summary"] = _summary(doc, plan, tree)
        if on_event:
            on_event("plan", doc)
        return doc

    dest_path.mkdir(parents=True, exist_ok=True)
    lock = _lock(dest, dest_path)  # released when this process ends, however it ends
    try:
        return _run(report, tasks, plan, tree, run, jobs, cluster, pool, dest_path, on_event)
    finally:
        if lock is not None:
            os.close(lock)


def _check_dest_place(dest, dest_path: Path) -> None:
    """DEST, or the directory it will be made in, can take the outputs."""
    here = dest_path
    while not os.path.lexists(here) and here.parent != here:
        here = here.parent
    if not here.is_dir():
        raise MigrationError(f"{dest}: {here} is not a directory")
    if not os.access(here, os.W_OK | os.X_OK):
        try:
            readonly = bool(os.statvfs(here).f_flag & os.ST_RDONLY)
        except (OSError, AttributeError):
            readonly = False
        why = "read-only file system" if readonly else "permission denied"
        raise ConverterError(f"{dest}: cannot write {'in ' + str(here) if here != dest_path else 'there'}: {why}")


def _lock(dest, dest_path: Path):
    """Hold DEST (an exclusive flock on the directory itself: no file left behind) so that two
    migrations into one DEST cannot interleave their outputs and reports."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        return None
    fd = os.open(dest_path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise BusyError(f"{dest}: another migration is writing to this destination; wait for it to end, "
                        f"or choose another") from None
    except OSError:  # a file system without locks
        pass
    return fd


def _run(report, tasks, plan, tree, run, jobs, cluster, pool, dest_path, on_event) -> dict:
    _remove_stale_temp(dest_path)
    if on_event:
        on_event("plan", {**report.document(), "plan": plan})
    report.write()

    def finished(res: dict) -> None:
        entry = dict(report.entries[res["id"]])
        entry.update(records=res["records"], format=res["format"], codecs=res["codecs"], notes=res["notes"],
                     verify=res["verify"], seconds=res["seconds"], error=res["error"],
                     status="ok" if res["error"] is None else "failed", run=run, finished=_iso(time.time()))
        report.set(entry)
        if res["id"] in report.in_progress:
            report.in_progress.remove(res["id"])
        report.log({"done": entry})
        if on_event:
            on_event("done", entry)

    def starting(ids: list) -> None:
        report.in_progress.extend(ids)
        report.log({"start": ids})  # before the tasks start: a kill after an output appears still finds it named
        if on_event:
            for i in ids:
                on_event("start", {"store": i})

    t_run = time.perf_counter()
    try:
        if cluster[0] is not None and tasks:
            _run_dask(tasks, cluster, jobs, starting, finished, report)
        elif jobs == 1 or len(tasks) <= 1:
            for task in tasks:
                starting([task["id"]])
                finished(run_task(task))
        else:
            _run_pool(tasks, jobs, starting, finished, first=pool)
        report.in_progress = []
        report.head["finished"] = _iso(time.time())
        report.head["run_seconds"] = round(time.perf_counter() - t_run, 6)
        report.head["report_seconds"] = round(report.seconds, 6)
        report.head["summary"] = _summary(report.document(), plan, tree)
    except BaseException:  # Ctrl-C, a signal: "finished" stays null, the summary says what did
        report.head["interrupted"] = True
        report.head["summary"] = _summary(report.document(), plan, tree)
        raise
    finally:
        report.close()  # after Ctrl-C too: the report holds every store that finished
    doc = report.document()
    doc["plan"] = plan
    return doc


def _plan_tree(src_path: Path, registry, pool, jobs: int):
    """The tree's stores, detected in the pool's workers when there is one (detection is most of
    the plan's cost, and would otherwise run on one core while the others wait). A worker that
    dies detecting (a plugin's sniff that crashes the interpreter) costs the pool, not the plan:
    the detection is redone here, and the conversions get a fresh pool."""
    from concurrent.futures.process import BrokenProcessPool

    from .tree import scan

    if pool is None or registry is not _default_registry():
        return scan(src_path, registry), pool
    try:
        return scan(src_path, registry, detect_map=lambda fn, batches: _share(pool, fn, batches, jobs)), pool
    except BrokenProcessPool:
        pool.shutdown(wait=True, cancel_futures=True)
        return scan(src_path, registry), None


def _share(pool, fn, batches: list, jobs: int) -> list:
    """``[fn(b) for b in batches]``: ``jobs`` threads hand batches from the front to the pool's
    workers while this thread runs batches from the back itself. A submit blocks while the pool
    starts its workers (the forkserver imports the engine first): here it blocks a feeding
    thread, and the walk's batches are being detected meanwhile."""
    import threading
    from collections import deque

    queue, results, failed, lock = deque(enumerate(batches)), [None] * len(batches), [], threading.Lock()
    diverged: list = []

    def take(front: bool):
        with lock:
            return (queue.popleft() if front else queue.pop()) if queue else None

    def feed():
        try:
            while (item := take(True)) is not None:
                try:
                    results[item[0]] = pool.submit(_worker_detect, item[1]).result()
                except WorkerDiverged as exc:  # detected here instead, and said once
                    if not diverged:
                        diverged.append(str(exc))
                    results[item[0]] = fn(item[1])
        except BaseException as exc:  # BrokenProcessPool: re-raised below, in the planning thread
            failed.append(exc)

    feeders = [threading.Thread(target=feed, name="converter-plan", daemon=True)
               for _ in range(min(jobs, len(batches)))]
    for t in feeders:
        t.start()
    while (item := take(False)) is not None:
        results[item[0]] = fn(item[1])
    for t in feeders:
        t.join()
    if diverged:
        import warnings

        from .plugin_manager import PluginWarning

        warnings.warn(f"{diverged[0]}: the plan was made here, and that plugin's stores fail", PluginWarning,
                      stacklevel=2)
    if failed:
        raise failed[0]
    return results


def _default_registry():
    from .registry import get_registry

    return get_registry()


def _summary(doc, plan, tree) -> dict:
    """Counts of the plan and of what finished: ``converted`` is the stores this run converted
    with success (in a dry run: would convert), ``unfinished`` those an interruption left."""
    stores = doc.get("stores", [])
    status = {e.get("store"): e.get("status") for e in stores}
    converting = [p["store"] for p in plan if p["action"] == "convert"]
    return {
        "stores": len(plan),
        "converted": len(converting) if doc.get("dry_run") else sum(1 for s in converting if status.get(s) == "ok"),
        "unfinished": 0 if doc.get("dry_run") else sum(1 for s in converting if status.get(s) == "pending"),
        "up_to_date": sum(1 for p in plan if p["action"] == "skip"),
        "ok": sum(1 for e in stores if e.get("status") == "ok"),
        "failed": sum(1 for e in stores if e.get("status") == "failed"),
        "records": sum(e.get("records") or 0 for e in stores if e.get("status") == "ok"),  # records moved
        "not_data": len(tree.not_data),
        "unreadable": len(tree.unreadable),
    }


def succeeded(report: dict) -> bool:
    """Every store converted (and verified when asked), and nothing unreadable."""
    return (not report.get("unreadable") and not report.get("dry_run")
            and all(e.get("status") == "ok" for e in report.get("stores", [])))


def _output_name(sid: str, ext: str, known: set, taken: set) -> str:
    """``a/b.db`` -> ``a/b.sqlite``; a suffix no format knows is kept (``cache.v2`` ->
    ``cache.v2.sqlite``), and a name two stores would share takes the whole source name."""
    p = Path(sid)
    base = p.with_suffix("") if p.suffix.lower() in known else p
    name = f"{base.as_posix()}{ext}"
    if name.lower() in taken:
        name = f"{sid}{ext}"
        n = 2
        while name.lower() in taken:
            name, n = f"{sid}.{n}{ext}", n + 1
    taken.add(name.lower())
    return name


def _inside(rel: str) -> bool:
    """A name from the report stays under DEST (the report is a file anyone could edit)."""
    p = Path(rel)
    return not p.is_absolute() and ".." not in p.parts and bool(p.parts)


def _remove_stale_temp(dest: Path) -> None:
    """Report temp files a killed run left (its pid gone)."""
    prefix = f".{REPORT_NAME}."
    for entry in os.scandir(dest):
        if entry.name.startswith(prefix) and entry.name.endswith(".tmp"):
            pid = entry.name[len(prefix):-4]
            if pid.isdigit() and not _alive(int(pid)):
                try:
                    os.unlink(entry.path)
                except OSError:
                    pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def _version() -> str:
    from . import __version__

    return __version__


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


# -- executors: a local process pool or a Dask cluster, through the same submit/wait loop --------

def _crashed(task: dict, exc: BaseException) -> dict:
    return {"id": task["id"], "records": None, "format": task["format"], "codecs": {}, "notes": [],
            "verify": None, "seconds": 0.0,
            "error": f"{task['main']}: the worker process converting it died ({type(exc).__name__}: {exc}); "
                     f"the other stores went on"}


def _drive(executor, tasks: list, window: int, starting, finished, fn=run_task) -> list:
    """Submit ``tasks`` to a concurrent.futures-style ``executor``, ``window`` at a time; return
    the tasks that were in flight when the executor broke (a worker died), else []."""
    from collections import deque
    from concurrent.futures import FIRST_COMPLETED, wait
    from concurrent.futures.process import BrokenProcessPool

    queue, inflight = deque(tasks), {}
    try:
        while queue or inflight:
            batch = []
            while queue and len(inflight) + len(batch) < window:
                batch.append(queue.popleft())
            if batch:
                starting([t["id"] for t in batch])
                for t in batch:
                    inflight[executor.submit(fn, t)] = t
            done, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
            broken = False
            for fut in done:
                task = inflight.pop(fut)
                try:
                    finished(fut.result())
                except BrokenProcessPool:
                    broken = True
                    inflight[fut] = task
                except Exception as exc:  # Dask: KilledWorker after its retries, a lost connection
                    finished(_crashed(task, exc))
            if broken:
                return list(inflight.values()) + list(queue)
    except BaseException:  # Ctrl-C (or a signal to this process alone): keep what finished, stop the rest
        for fut, task in list(inflight.items()):
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                finished(fut.result())  # a store converted while we were told to stop is not redone
            else:
                fut.cancel()
        _stop_workers(executor)
        raise
    return []


def _stop_workers(executor) -> None:
    """Interrupt a local pool's workers as a terminal's Ctrl-C would (they remove their scratch
    files), and end any that do not stop within 5 s: an interrupted migration stops now, not
    after the stores in flight (a SIGINT sent to this process alone reaches no worker)."""
    import signal

    procs = list((getattr(executor, "_processes", None) or {}).values())  # ProcessPoolExecutor only
    if not procs:
        return
    executor.shutdown(wait=False, cancel_futures=True)  # no next task: an interrupted worker then exits
    for p in procs:
        try:
            os.kill(p.pid, signal.SIGINT)
        except (OSError, TypeError):
            pass
    deadline = time.monotonic() + 5
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()


def _pool(jobs: int):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    kwargs = {}
    if sys.platform.startswith("linux"):
        # forkserver: no fork of a process with threads (the progress display has one); its
        # server imports the engine and the built-in readers once, so each worker starts warm
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(_PRELOAD)
        kwargs["mp_context"] = ctx
        # started now with SIGINT blocked (as multiprocessing starts its resource tracker): a
        # Ctrl-C while the server's interpreter starts would kill it with a traceback; it
        # ignores SIGINT, then unblocks it, first thing in its preload (_pool_preload)
        import signal
        from multiprocessing import forkserver, resource_tracker

        resource_tracker.ensure_running()  # first: starting it unblocks SIGINT in this thread
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        # the server builds the workers' registry: without the plugins that failed here (one
        # that hangs while importing would cost its time limit again)
        saved = os.environ.get("CONVERTER_DISABLE_PLUGINS")
        failed = _failed_plugins()
        if failed:
            os.environ["CONVERTER_DISABLE_PLUGINS"] = ",".join(filter(None, [saved, *failed]))
        try:
            forkserver.ensure_running()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            if saved is None:
                os.environ.pop("CONVERTER_DISABLE_PLUGINS", None)
            else:
                os.environ["CONVERTER_DISABLE_PLUGINS"] = saved
    if sys.version_info >= (3, 11):
        kwargs["max_tasks_per_child"] = 500  # bound what a long-lived worker can accumulate
    return ProcessPoolExecutor(max_workers=jobs, initializer=_ready, initargs=(os.getpid(), _loaded_plugins()),
                               **kwargs)


def _failed_plugins() -> list:
    from .registry import get_registry

    return [name for name, info in get_registry().plugins.items() if info.status == "failed" and not info.builtin]


def _loaded_plugins() -> dict:
    """{plugin name: distribution} of the plugins this process loaded (what a worker must have)."""
    from .registry import get_registry

    return {name: info.distribution for name, info in get_registry().plugins.items() if info.status == "loaded"}


# imported once by the forkserver, so that no worker pays for them on its first store
_PRELOAD = ["converter._pool_preload", "converter.migration", "converter.pipeline", "converter.verify", "converter.registry", "sqlite3",
            "converter.plugins.dbm", "converter.plugins.sqlite", "converter.plugins.pickle", "converter.plugins.json",
            "converter.safepickle", "converter.jsontags", "converter.keyset"]


def _ready(migrating: int | None = None, expected: dict | None = None) -> None:
    """A worker's start: the registry built once (plugins loaded as in the migrating process),
    and a watch on the migrating process (pid ``migrating``).

    The migrating process has said what each plugin's failure is; a worker saying it again
    would repeat each warning once per worker. A worker holds both ends of the pool's queues, so
    it never sees its migration end when that process is killed (``kill -9 PID``): without the
    watch it would wait for its next task for ever, and the forkserver with it."""
    import warnings

    from .plugin_manager import PluginWarning
    from .registry import get_registry

    import signal

    signal.signal(signal.SIGINT, _on_sigint)
    warnings.simplefilter("ignore", PluginWarning)
    registry = get_registry()
    if expected:  # a plugin that loaded in the migrating process and not here (it fails in a child only)
        global _worker_problem
        missing = [name for name in expected if getattr(registry.plugins.get(name), "status", None) != "loaded"]
        if missing:
            from .guard import who

            _worker_problem = "; ".join(
                f"{who(name, expected[name])} loaded in the migrating process but not in its worker processes"
                + (f" ({registry.plugins[name].error})" if name in registry.plugins and registry.plugins[name].error
                   else "") for name in missing)
    if migrating is not None:
        import threading

        threading.Thread(target=_watch, args=(migrating,), name="converter-watch", daemon=True).start()


def _watch(pid: int) -> None:
    while _alive(pid):
        time.sleep(0.5)
    os._exit(137)  # its migration was killed: nothing will read what this worker does next


_in_task = False  # a pool worker is converting a store (_worker_task)
_worker_problem = ""  # why this worker's plugins are not the migrating process's (_ready)


class WorkerDiverged(Exception):
    """A worker without a plugin the migrating process has: its detection cannot be trusted."""


def _worker_detect(batch):
    """The plan's detection of one batch in a pool worker (``tree.detect_batch``), refused by a
    worker that lacks a plugin: it would list that plugin's stores as not data."""
    if _worker_problem:
        raise WorkerDiverged(_worker_problem)
    from .tree import detect_batch

    return detect_batch(batch)


def _on_sigint(signum, frame):
    """Ctrl-C in a pool worker: inside a store, KeyboardInterrupt, so that the conversion removes
    its scratch files; anywhere else (waiting for a task, detecting, sending a result) the worker
    ends at once, without the traceback multiprocessing would print for it."""
    if _in_task:
        raise KeyboardInterrupt
    os._exit(130)


def _worker_task(task: dict) -> dict:
    """run_task in a pool worker: Ctrl-C (the conversion has removed its scratch files by the time
    KeyboardInterrupt gets here) ends the worker, instead of letting it take the next task."""
    global _in_task
    if _worker_problem:
        from .registry import get_registry

        try:
            get_registry().format(task["format"])
        except ConverterError:  # the store is of the plugin this worker lacks: fail it saying so
            out = _crashed(task, RuntimeError())
            out["error"] = f"{task['main']}: {_worker_problem}; convert it with --jobs 1, or fix the plugin"
            return out
    _in_task = True
    try:
        return run_task(task)
    except KeyboardInterrupt:
        os._exit(130)
    finally:
        _in_task = False


def _run_pool(tasks: list, jobs: int, starting, finished, fn=_worker_task, first=None) -> None:
    """Every task in a process pool. When a worker dies (a crash, the OOM killer, a signal), the
    tasks that were in flight are run again one at a time, each in a pool of its own, so the one
    that killed its worker fails alone; then the rest continue in a fresh pool."""
    remaining = tasks
    while remaining:
        executor, first = first or _pool(jobs), None
        with executor:
            left = _drive(executor, remaining, jobs * WINDOW, starting, finished, fn)
        if not left:
            return
        suspects, remaining = left[: jobs * WINDOW], left[jobs * WINDOW:]
        for task in suspects:
            task = {**task, "force": task.get("force") or not task.get("existed")}
            with _pool(1) as solo:
                if _drive(solo, [task], 1, lambda ids: None, finished, fn):
                    finished(_crashed(task, _WorkerDied("it ended abruptly")))


class _WorkerDied(Exception):
    pass


def _connect(address: str):
    try:
        from distributed import Client
    except ImportError:
        raise MigrationError("--scheduler needs Dask's distributed: pip install 'converter-toolkit[dask]'") from None
    try:
        return Client(address, timeout="20s")
    except Exception as exc:
        raise ClusterError(f"--scheduler {address}: cannot connect: {exc}") from None


def _run_dask(tasks: list, cluster: tuple, jobs: int, starting, finished, report) -> None:
    client, address = cluster
    workers = client.scheduler_info().get("workers", {})
    threads = sum(w.get("nthreads", 1) for w in workers.values()) or jobs
    report.head["cluster"] = {"scheduler": address, "workers": len(workers), "threads": threads}
    executor = client.get_executor(pure=False)
    left = _drive(executor, tasks, max(threads, 1) * WINDOW, starting, finished)
    for task in left:
        finished(_crashed(task, _WorkerDied("the cluster lost it")))
