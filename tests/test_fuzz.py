"""Fuzzing every reader with damaged copies of the real fixtures (the short CI campaign).

Each reader reads a seed file (tests/fixtures, made by the real software) after a few random
mutations: bit flips, overwritten runs, truncations, insertions, splices of another seed,
duplicated slices, 4-byte fields set to extreme values. Every record is read, raw and through
the codecs; the only exception allowed out is converter.errors.ConverterError, and each input
must finish within a time limit. The harness and the mutations live in fuzz/ (shared with the
longer campaign, fuzz/run_fuzz.py, whose results are in fuzz/RESULTS.md).

Deterministic by default; FUZZ_EXAMPLES=N changes the examples per reader (default 200) and
FUZZ_RANDOM=1 draws new inputs on every run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fuzz"))

import targets  # noqa: E402
from mutate import mutated  # noqa: E402

from converter.errors import ConverterError  # noqa: E402

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
SECONDS_PER_INPUT = 10


@pytest.fixture(scope="module")
def json_seeds(tmp_path_factory):
    return targets.json_seeds(tmp_path_factory.mktemp("json-seeds"))


def _seeds(name, json_seeds):
    seeds = json_seeds[name] if name in ("json", "jsonl") else targets.TARGETS[name].seed_bytes()
    assert seeds, f"no seed for {name}"
    return seeds


@pytest.mark.parametrize("name", list(targets.TARGETS))
def test_seeds_read_cleanly(tmp_path, name, json_seeds):
    """The unmutated seeds are real files: each reads (or, for a store whose keys are not text,
    fails only in the codecs; a Python 2 pickle of an instance is refused on purpose)."""
    for seed in _seeds(name, json_seeds):
        try:
            targets.run(name, seed, tmp_path / "w", seconds=SECONDS_PER_INPUT)
        except ConverterError as exc:
            if name.endswith("-budget"):  # hostile seeds: refused by the small budget, or read
                assert "resource budget" in str(exc), exc
                continue
            assert "codec" in str(exc) or "refused pickle global __main__.Point" in str(exc), exc


@pytest.mark.parametrize("name", list(targets.TARGETS))
def test_only_converter_errors_escape(tmp_path, name, json_seeds):
    seeds = _seeds(name, json_seeds)
    workdir = tmp_path / "w"

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=not os.environ.get("FUZZ_RANDOM"),
              suppress_health_check=list(HealthCheck))
    @given(mutated(seeds))
    def check(data):
        try:
            targets.run(name, data, workdir, seconds=SECONDS_PER_INPUT)
        except ConverterError:
            pass

    check()


REGRESSIONS = Path(__file__).resolve().parent.parent / "fuzz" / "regressions"


@pytest.mark.parametrize("name,file,match", [
    # a pickle opcode claiming a huge length made the reader ask the file for that many bytes
    # at once (MemoryError); it now reads in bounded pieces and reports a truncation
    ("pickle", "pickle-huge-claimed-length.pkl", "truncated pickle"),
    # a sqlitedict-style table with a NULL value crashed the codec sniffing (TypeError)
    ("sqlite", "sqlite-null-value.sqlite", "NULL"),
    # TUPLE3 right after a MARK made the model of the unpickler's stack (the budget's check of
    # tuple keys) add a MARK to a tuple's hash work (TypeError); the unpickler reports it
    ("pickle-budget", "pickle-budget-tuple-on-mark.pkl", "MARK"),
])
def test_inputs_the_long_campaign_found(tmp_path, name, file, match):
    """Inputs the atheris campaign found (fuzz/RESULTS.md), kept as regression checks."""
    with pytest.raises(ConverterError, match=match):
        targets.run(name, (REGRESSIONS / file).read_bytes(), tmp_path / "w", seconds=SECONDS_PER_INPUT)
