#!/usr/bin/env python3
"""A longer fuzzing campaign over every reader (CI runs the short one: tests/test_fuzz.py).

    python fuzz/run_fuzz.py                      # every target, 60 s each, atheris if installed
    python fuzz/run_fuzz.py --seconds 300 pickle dbm.gnu
    python fuzz/run_fuzz.py --engine hypothesis --examples 20000 sqlite

atheris (``pip install atheris``) is coverage-guided: libFuzzer mutates the seeds toward new
branches of our Python code. Each target runs in its own process; an input that makes a reader
raise anything but ConverterError, hang past --timeout seconds or use more than --rss-mb is
saved under fuzz/artifacts/ and reported. Without atheris, Hypothesis mutates the seeds at
random (flips, truncations, splices, random insertions), like the CI harness but longer.

The summary (inputs run per target, failures) is printed at the end; fuzz/RESULTS.md records
the campaigns that were run.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("CONVERTER_LOAD_PLUGINS", "")


def _have_atheris() -> bool:
    try:
        import atheris  # noqa: F401
    except ImportError:
        return False
    return True


# -- one target under atheris (a child process) -------------------------------------------

def atheris_worker(name: str, seconds: int, timeout: int, rss_mb: int, corpus: Path, artifacts: Path) -> None:
    import atheris

    with atheris.instrument_imports(include=["converter"]):
        import converter  # noqa: F401
        from converter.errors import ConverterError
        import targets

        # every module a reader may reach, instrumented before use
        from converter import codecs, jsonstream, jsontags, pipeline, safepickle  # noqa: F401
        from converter.plugins import bdb, dbm, gdbm, json, pickle, sqlite  # noqa: F401
    workdir = Path(tempfile.mkdtemp(prefix=f"fuzz-{name}-"))

    def one(data: bytes):
        try:
            targets.run(name, data, workdir / "w")
        except ConverterError:
            pass

    corpus.mkdir(parents=True, exist_ok=True)
    seeds = targets.TARGETS[name].seed_bytes()
    if name in ("json", "jsonl"):
        seeds = targets.json_seeds(workdir / "seeds")[name]
    for i, seed in enumerate(seeds):
        (corpus / f"seed{i}").write_bytes(seed)
    artifacts.mkdir(parents=True, exist_ok=True)
    args = [sys.argv[0], str(corpus), f"-max_total_time={seconds}", f"-timeout={timeout}",
            f"-rss_limit_mb={rss_mb}", f"-artifact_prefix={artifacts}/{name}-", "-print_final_stats=1",
            "-max_len=131072"]
    atheris.Setup(args, one)
    atheris.Fuzz()


# -- one target under Hypothesis ------------------------------------------------------------

def hypothesis_worker(name: str, examples: int, timeout: int, artifacts: Path) -> None:
    from hypothesis import HealthCheck, given, settings

    import targets
    from converter.errors import ConverterError
    from mutate import mutated

    workdir = Path(tempfile.mkdtemp(prefix=f"fuzz-{name}-"))
    seeds = targets.TARGETS[name].seed_bytes()
    if name in ("json", "jsonl"):
        seeds = targets.json_seeds(workdir / "seeds")[name]
    count = [0]

    @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(mutated(seeds))
    def check(data):
        count[0] += 1
        try:
            targets.run(name, data, workdir / "w", seconds=timeout)
        except ConverterError:
            pass
        except BaseException:
            artifacts.mkdir(parents=True, exist_ok=True)
            (artifacts / f"{name}-hypothesis-{len(data)}-{hash(data) & 0xffffffff:08x}").write_bytes(data)
            raise

    started = time.monotonic()
    try:
        check()
        status = "no failure"
    except BaseException as exc:  # report and carry on with the other targets
        status = f"FAILED: {type(exc).__name__}: {str(exc)[:300]}"
    print(f"Done {count[0]} runs in {time.monotonic() - started:.0f} second(s); {status}")


# -- the driver -----------------------------------------------------------------------------

def main() -> int:
    import targets

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help=f"targets (default: all): {', '.join(targets.TARGETS)}")
    ap.add_argument("--engine", choices=("auto", "atheris", "hypothesis"), default="auto")
    ap.add_argument("--seconds", type=int, default=60, help="atheris: seconds per target")
    ap.add_argument("--examples", type=int, default=5000, help="hypothesis: examples per target")
    ap.add_argument("--timeout", type=int, default=10, help="seconds one input may take")
    ap.add_argument("--rss-mb", type=int, default=2048, help="atheris: memory limit per target process")
    ap.add_argument("--artifacts", type=Path, default=HERE / "artifacts")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    args, rest = ap.parse_known_args()
    engine = args.engine
    if engine == "auto":
        engine = "atheris" if _have_atheris() else "hypothesis"

    if args.worker:
        sys.argv = [sys.argv[0], *rest]
        if engine == "atheris":
            atheris_worker(args.worker, args.seconds, args.timeout, args.rss_mb, args.corpus, args.artifacts)
        else:
            hypothesis_worker(args.worker, args.examples, args.timeout, args.artifacts)
        return 0

    names = args.names or list(targets.TARGETS)
    unknown = [n for n in names if n not in targets.TARGETS]
    if unknown:
        ap.error(f"unknown target(s) {unknown}; pick from {list(targets.TARGETS)}")
    results = []
    corpora = Path(tempfile.mkdtemp(prefix="fuzz-corpora-"))
    for name in names:
        cmd = [sys.executable, __file__, "--worker", name, "--engine", engine, "--seconds", str(args.seconds),
               "--examples", str(args.examples), "--timeout", str(args.timeout), "--rss-mb", str(args.rss_mb),
               "--artifacts", str(args.artifacts), "--corpus", str(corpora / name)]
        started = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
        took = time.monotonic() - started
        log = proc.stdout + proc.stderr
        runs = re.findall(r"Done (\d+) runs in", log) or re.findall(r"number_of_executed_units: (\d+)", log)
        cov = re.findall(r"cov: (\d+)", log)
        failed = proc.returncode != 0 or "FAILED" in log
        results.append((name, int(runs[-1]) if runs else 0, int(cov[-1]) if cov else None, took, failed))
        print(f"{name:18} {results[-1][1]:>9,} inputs  {took:6.0f}s  coverage {cov[-1] if cov else '-':>6}  "
              f"{'FAILED' if failed else 'ok'}", flush=True)
        if failed:
            tail = "\n".join(log.strip().splitlines()[-40:])
            print(f"--- {name} (exit {proc.returncode}) ---\n{tail}\n---", flush=True)
    shutil.rmtree(corpora, ignore_errors=True)
    total = sum(r[1] for r in results)
    print(f"engine {engine}: {total:,} inputs over {len(results)} targets; "
          f"{sum(r[4] for r in results)} target(s) failed")
    return 1 if any(r[4] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
