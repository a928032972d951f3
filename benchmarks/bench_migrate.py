"""``convert migrate`` over 400 small stores: the speed-up of --jobs 2 over --jobs 1, and the
engine's own cost per store.

    .venv/bin/python benchmarks/bench_migrate.py [--stores 400] [--reps 3]

The tree (made once per run in a temporary directory): 400 stores of 50 records each in 20
directories, a third each dbm.dumb (two files, written by this interpreter), pickle and JSON,
plus 40 junk files.

1. Speed-up: the whole ``python -m converter migrate SRC DST --quiet`` process (start-up, plan,
   conversions, verification, report), ``--jobs 1`` and ``--jobs 2`` alternating, each into a
   fresh DST; median wall time of ``--reps`` runs each. Target: --jobs 2 at least 1.7x faster.
2. Overhead per store: in this process, ``converter.migrate(..., jobs=1, verify=False)`` against
   the same conversions called directly (``converter.convert`` of each store, with the format
   the plan found); (migrate time - report writing - direct conversions) / stores. The plan
   (walk, detection, fingerprints) is counted in the overhead. Target: under 20 ms.

Prints one PASS/FAIL line per target, as benchmarks/run.py does.
"""

from __future__ import annotations

import argparse
import dbm.dumb
import json
import os
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_tree(root: Path, n: int) -> None:
    for i in range(n):
        d = root / f"dir{i % 20:02d}" / ("nested" if i % 3 == 0 else "")
        d.mkdir(parents=True, exist_ok=True)
        data = {f"key{j}": {"key": f"key{j}", "name": f"name {i} {j}", "n": j} for j in range(50)}
        kind = i % 3
        if kind == 0:
            with dbm.dumb.open(str(d / f"store{i:03d}"), "n") as db:
                for k, v in data.items():
                    db[k] = json.dumps(v)
        elif kind == 1:
            with open(d / f"store{i:03d}.pkl", "wb") as f:
                pickle.dump(data, f, protocol=2)
        else:
            (d / f"store{i:03d}.json").write_text(json.dumps(data))
        if i % 10 == 0:
            (d / f"notes{i:03d}.txt").write_text("not data\n")


def run_cli(src: Path, dst: Path, jobs: int) -> float:
    shutil.rmtree(dst, ignore_errors=True)
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "converter", "migrate", str(src), str(dst), "--jobs", str(jobs),
                        "--quiet"], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"migrate --jobs {jobs} failed ({r.returncode}): {r.stderr[-2000:]}")
    return wall


def overhead(src: Path, work: Path) -> dict:
    import converter
    from converter.tree import scan
    from converter.registry import get_registry

    dst = work / "overhead"
    shutil.rmtree(dst, ignore_errors=True)
    get_registry()  # loaded once, as in any process
    t = time.perf_counter()
    report = converter.migrate(src, dst, jobs=1, verify=False)
    migrate_s = time.perf_counter() - t
    direct = work / "direct"
    shutil.rmtree(direct, ignore_errors=True)
    stores = scan(src, get_registry()).stores
    t = time.perf_counter()
    for s in stores:
        out = direct / s.main.relative_to(src).with_suffix(".sqlite")
        out.parent.mkdir(parents=True, exist_ok=True)
        converter.convert(s.main, out, from_=s.format)
    direct_s = time.perf_counter() - t
    n = len(stores)
    return {"stores": n, "migrate_s": migrate_s, "direct_s": direct_s, "report_s": report["report_seconds"],
            "plan_s": report["plan_seconds"],
            "per_store_ms": (migrate_s - report["report_seconds"] - direct_s) / n * 1000}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stores", type=int, default=400)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-migrate-"))
    try:
        src = work / "src"
        make_tree(src, args.stores)
        times = {1: [], 2: []}
        for rep in range(args.reps):
            for jobs in ((1, 2) if rep % 2 == 0 else (2, 1)):
                times[jobs].append(run_cli(src, work / f"dst{jobs}", jobs))
                print(f"rep {rep + 1}: --jobs {jobs}: {times[jobs][-1]:.2f} s", flush=True)
        t1, t2 = statistics.median(times[1]), statistics.median(times[2])
        o = overhead(src, work)
        print(f"\n{args.stores} stores on {os.cpu_count()} cores: --jobs 1 {t1:.2f} s, --jobs 2 {t2:.2f} s "
              f"(medians of {args.reps})")
        print(f"in-process, no verify: migrate {o['migrate_s']:.2f} s (plan {o['plan_s']:.2f} s, report "
              f"{o['report_s']:.2f} s), direct conversions {o['direct_s']:.2f} s")
        speedup = t1 / t2
        print()
        print(f"{'PASS' if speedup >= 1.7 else 'FAIL'}  migrate --jobs 2 vs --jobs 1 on {args.stores} small stores: "
              f"{speedup:.2f}x (target >= 1.7x)")
        print(f"{'PASS' if o['per_store_ms'] < 20 else 'FAIL'}  migrate overhead per store (report excluded, plan "
              f"included, no verify): {o['per_store_ms']:.1f} ms (target < 20 ms)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
