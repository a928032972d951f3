"""Compare two stores record by record (``convert verify A B`` and ``convert IN OUT --verify``).

Each record is reduced to two 16-byte digests, of a canonical form of its key and of its value
(tagged JSON with dict members sorted), so stores of different formats compare through the same
codecs and record order does not matter. Memory holds digests, never values, and not all of
them at once: the 32-byte pairs go to one of 256 buckets by the key digest's first byte, the
buckets spill to a temporary directory once they pass ``SPILL_BYTES``, and the two stores are
then compared one bucket at a time. A store of N records costs 32 N bytes of temporary disk and
about N / 256 dict entries of memory at the peak, plus the fixed buffers.

Records are canonicalised in batches: a batch of plain JSON values (the common case) is written
by json's C encoder in one call (``jsontags.plain_texts``), which gives the very text the
general path gives; anything else takes the general path one value at a time.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .buckets import COUNT as BUCKETS, Buckets
from .errors import ConverterError, OptionError
from .options import Options
from .pipeline import check_codec_names, read_records, with_restarts
from .registry import get_registry

BATCH = 1000  # records canonicalised per call
SPILL_BYTES = 16 * 2**20  # digest bytes held in memory before the buckets go to disk
_PAIR = 32  # key digest (16) + value digest (16)


def canonical(value) -> str:
    """A text that is equal for equal values of equal types (1, 1.0 and True differ; NaN == NaN)."""
    from .jsontags import encode

    from .budget import BudgetError

    try:
        encoded = encode(value)
    except BudgetError:
        raise
    except ConverterError as exc:
        if "shared references expand" in str(exc):
            raise  # refused here as convert refuses it
        return _object_text(value)
    try:
        return json.dumps(_sorted(encoded), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    except RecursionError:  # deeper than the sorter goes: compare in stored order
        from .jsontags import dumps

        return dumps(value)


def _object_text(value) -> str:
    """For a value the JSON tags cannot hold (an instance of an --allow'ed class): its pickle,
    which holds the class and the state, so two equal instances compare equal (their repr()
    would differ by address)."""
    import pickle

    try:
        return "pickle:" + hashlib.blake2b(pickle.dumps(value, protocol=4), digest_size=16).hexdigest()
    except Exception:
        return "repr:" + repr(value)


def canonical_texts(values: list) -> list[str]:
    """``[canonical(v) for v in values]``, in one C encoder call when the batch is plain JSON."""
    from .jsontags import plain_texts

    texts = plain_texts(values, sort_keys=True)
    return texts if texts is not None else [canonical(v) for v in values]


_UNORDERED_PAIRS = ("$dict", "$defaultdict")


def _sorted(obj):
    """Sort the pairs of tags whose order Python's == ignores (a dict with non-str keys)."""
    if isinstance(obj, list):
        return [_sorted(x) for x in obj]
    if isinstance(obj, dict):
        if len(obj) == 1:
            (tag, payload), = obj.items()
            if tag == "$dict":
                return {tag: sorted(([_sorted(k), _sorted(v)] for k, v in payload), key=_text)}
            if tag == "$defaultdict":
                items = sorted(([_sorted(k), _sorted(v)] for k, v in payload["items"]), key=_text)
                return {tag: {**payload, "items": items}}
        return {k: _sorted(v) for k, v in obj.items()}
    return obj


def _text(x):
    return json.dumps(x, sort_keys=True, ensure_ascii=False)


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def digested(records: Iterable[tuple]) -> Iterator[tuple[tuple, bytes, bytes]]:
    """Each record with the digests of its key and value: ``(record, key_digest, value_digest)``."""
    it = iter(records)
    while True:
        batch = list(islice(it, BATCH))
        if not batch:
            return
        keys = _digests(canonical_texts([r[0] for r in batch]))
        values = _digests(canonical_texts([r[1] for r in batch]))
        yield from zip(batch, keys, values)


def _digests(texts: list[str]) -> list[bytes]:
    b2 = hashlib.blake2b
    return [b2(t.encode("utf-8", "surrogatepass"), digest_size=16).digest() for t in texts]


@dataclass
class Comparison:
    a_records: int = 0
    b_records: int = 0
    only_in_a: list = field(default_factory=list)
    only_in_b: list = field(default_factory=list)
    different: list = field(default_factory=list)
    n_only_in_a: int = 0
    n_only_in_b: int = 0
    n_different: int = 0
    repeated_in_a: list = field(default_factory=list)  # keys a side holds more than once
    repeated_in_b: list = field(default_factory=list)
    n_repeated_a: int = 0  # its records beyond the first of each key
    n_repeated_b: int = 0

    @property
    def equal(self) -> bool:
        return not (self.n_only_in_a or self.n_only_in_b or self.n_different) and self.a_records == self.b_records


def _as_dict(pairs: bytes) -> dict[bytes, bytes]:
    """{key digest: value digest}; a key met twice keeps its last value, as a dict would."""
    return dict(zip([pairs[i:i + 16] for i in range(0, len(pairs), _PAIR)],
                    [pairs[i + 16:i + _PAIR] for i in range(0, len(pairs), _PAIR)]))


def _fill(path, fmt, options, registry, scratch: Path, side: str, progress) -> tuple[int, Buckets]:
    """Digest every record of one store (again from the start if an automatic codec did not fit)."""
    attempts = []

    def attempt():
        # the (key digest, value digest) pairs, by the key digest's first byte
        buckets = Buckets(SPILL_BYTES, scratch=scratch, prefix=f"{side}{len(attempts)}-")
        attempts.append(buckets)
        n = 0
        try:
            records = read_records(path, from_=fmt, options=options, registry=registry, flag=f"--format-{side}")
            for _, kd, vd in digested(records):
                buckets.add(kd[0], kd + vd)
                n += 1
                if progress is not None and not n % BATCH:
                    progress(n)
        except ConverterError as exc:  # the budget's refusals in the canonical form: name the store
            if str(path) in str(exc) or isinstance(exc, OptionError):
                raise
            raise type(exc)(f"{path}: after record #{n}: {exc}") from exc
        return n, buckets

    return with_restarts(attempt, options, str(path) != "-", f"reading {path}")


def compare(a, b, *, format_a=None, format_b=None, options: Options | None = None, registry=None,
            limit: int = 10, on_progress: Callable[[str, int], None] | None = None) -> Comparison:
    """Compare the records of ``a`` and ``b``; keep up to ``limit`` examples of each difference.

    ``on_progress(side, records)`` is called as each store is read (side ``"a"`` or ``"b"``).
    """
    options = options or Options()
    registry = registry or get_registry()
    check_codec_names(options, registry)
    with tempfile.TemporaryDirectory(prefix="convert-verify-") as tmp:
        scratch = Path(tmp)
        pa = (lambda n: on_progress("a", n)) if on_progress else None
        pb = (lambda n: on_progress("b", n)) if on_progress else None
        n_a, ba = _fill(Path(a), format_a, options, registry, scratch, "a", pa)
        n_b, bb = _fill(Path(b), format_b, options, registry, scratch, "b", pb)
        result = Comparison(a_records=n_a, b_records=n_b)
        only_a, only_b, differ = [], [], []
        repeated = {"a": [], "b": []}
        for i in range(BUCKETS):
            pa_, pb_ = ba.bucket(i), bb.bucket(i)
            da, db = _as_dict(pa_), _as_dict(pb_)
            for side, pairs, d in (("a", pa_, da), ("b", pb_, db)):
                extra = len(pairs) // _PAIR - len(d)
                if extra:  # a key met more than once on this side
                    setattr(result, f"n_repeated_{side}", getattr(result, f"n_repeated_{side}") + extra)
                    repeated[side].extend(islice(_repeats(pairs), max(0, limit - len(repeated[side]))))
            for kd, vd in da.items():
                other = db.pop(kd, None)
                if other is None:
                    result.n_only_in_a += 1
                    if len(only_a) < limit:
                        only_a.append(kd)
                elif other != vd:
                    result.n_different += 1
                    if len(differ) < limit:
                        differ.append(kd)
            result.n_only_in_b += len(db)
            only_b.extend(islice(db, max(0, limit - len(only_b))))
    if only_a or differ or repeated["a"]:
        keys = _keys(Path(a), format_a, options, registry, set(only_a) | set(differ) | set(repeated["a"]))
        result.only_in_a = [keys[kd] for kd in only_a]
        result.different = [keys[kd] for kd in differ]
        result.repeated_in_a = [keys[kd] for kd in repeated["a"]]
    if only_b or repeated["b"]:
        keys = _keys(Path(b), format_b, options, registry, set(only_b) | set(repeated["b"]))
        result.only_in_b = [keys[kd] for kd in only_b]
        result.repeated_in_b = [keys[kd] for kd in repeated["b"]]
    return result


def _repeats(pairs: bytes):
    """The key digests met more than once in a bucket's pairs, each once, in order."""
    seen, told = set(), set()
    for i in range(0, len(pairs), _PAIR):
        kd = pairs[i:i + 16]
        if kd in seen and kd not in told:
            told.add(kd)
            yield kd
        seen.add(kd)


def _keys(path, fmt, options, registry, wanted: set) -> dict[bytes, object]:
    """The keys whose digests are ``wanted`` (a second pass, taken only when stores differ)."""
    found = {}
    for (key, _), kd, _ in digested(read_records(path, from_=fmt, options=options, registry=registry)):
        if kd in wanted:
            found[kd] = key
    return found


def describe_differences(result: Comparison, a, b, *, format_a=None, format_b=None, options=None, registry=None) -> list[str]:
    """Lines for the user: the counts, then the first differences with both values."""
    lines = [f"{a}: {result.a_records} record(s); {b}: {result.b_records} record(s)"]
    if result.equal:
        lines.append("equal: every record matches")
        return lines
    if result.n_different:
        lines.append(f"{result.n_different} record(s) differ")
        digests = _digests(canonical_texts(list(result.different)))
        wanted = set(digests)
        va = _values(a, format_a, options, registry, wanted)
        vb = _values(b, format_b, options, registry, wanted)
        for k, kd in zip(result.different, digests):
            lines.append(f"  {k!r}: {_short(va.get(kd))} != {_short(vb.get(kd))}")
    if result.n_only_in_a:
        lines.append(f"{result.n_only_in_a} key(s) only in {a}: " + ", ".join(repr(k) for k in result.only_in_a))
    if result.n_only_in_b:
        lines.append(f"{result.n_only_in_b} key(s) only in {b}: " + ", ".join(repr(k) for k in result.only_in_b))
    for path, other, n, keys, n_other in ((a, b, result.n_repeated_a, result.repeated_in_a, result.n_repeated_b),
                                         (b, a, result.n_repeated_b, result.repeated_in_b, result.n_repeated_a)):
        if n > n_other:
            hint = "" if n_other else f"; {other} keeps one record per key (JSON Lines, --to jsonl, keeps every record)"
            lines.append(f"{path} holds {n} more record(s) of a key it already has: "
                         + ", ".join(repr(k) for k in keys) + hint)
    return lines


def _values(path, fmt, options, registry, wanted: set) -> dict[bytes, object]:
    found = {}
    records = read_records(Path(path), from_=fmt, options=options or Options(), registry=registry)
    for (_, value), kd, _ in digested(records):
        if kd in wanted:
            found[kd] = value
    return found


def _short(value, limit=120):
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
