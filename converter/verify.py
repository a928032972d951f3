"""Compare two stores record by record (``convert verify A B`` and ``convert IN OUT --verify``).

Each record is reduced to a digest of a canonical form of its key and value (tagged JSON with
dict members sorted), so stores of different formats compare through the same codecs, record
order does not matter, and memory holds digests, not values.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConverterError
from .options import Options
from .pipeline import read_records


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
            raise  # repr() of the value would expand it all the same
        return "repr:" + repr(value)
    try:
        return json.dumps(_sorted(encoded), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    except RecursionError:  # deeper than the sorter goes: compare in stored order
        from .jsontags import dumps

        return dumps(value)


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

    @property
    def equal(self) -> bool:
        return not (self.n_only_in_a or self.n_only_in_b or self.n_different) and self.a_records == self.b_records


def _index(path, fmt, options, registry, counter):
    """{canonical key: value digest} for a store; a key seen twice keeps its last value, as a dict would."""
    index: dict[str, bytes] = {}
    keys: dict[str, object] = {}
    for key, value in read_records(path, from_=fmt, options=options, registry=registry):
        counter[0] += 1
        try:
            ck = canonical(key)
            index[ck] = _digest(canonical(value))
        except ConverterError as exc:  # the budget's refusals: name the store
            raise type(exc)(f"{path}: record #{counter[0]}: {exc}") from None
        keys[ck] = key
    return index, keys


def compare(a, b, *, format_a=None, format_b=None, options: Options | None = None, registry=None,
            limit: int = 10) -> Comparison:
    """Compare the records of ``a`` and ``b``; keep up to ``limit`` examples of each difference."""
    options = options or Options()
    ca, cb = [0], [0]
    ia, ka = _index(Path(a), format_a, options, registry, ca)
    ib, kb = _index(Path(b), format_b, options, registry, cb)
    result = Comparison(a_records=ca[0], b_records=cb[0])
    for ck, digest in ia.items():
        other = ib.get(ck)
        if other is None:
            result.n_only_in_a += 1
            if len(result.only_in_a) < limit:
                result.only_in_a.append(ka[ck])
        elif other != digest:
            result.n_different += 1
            if len(result.different) < limit:
                result.different.append(ka[ck])
    for ck in ib.keys() - ia.keys():
        result.n_only_in_b += 1
        if len(result.only_in_b) < limit:
            result.only_in_b.append(kb[ck])
    return result


def describe_differences(result: Comparison, a, b, *, format_a=None, format_b=None, options=None, registry=None) -> list[str]:
    """Lines for the user: the counts, then the first differences with both values."""
    lines = [f"{a}: {result.a_records} record(s); {b}: {result.b_records} record(s)"]
    if result.equal:
        lines.append("equal: every record matches")
        return lines
    if result.n_different:
        lines.append(f"{result.n_different} record(s) differ")
        wanted = {canonical(k) for k in result.different}
        va = _values(a, format_a, options, registry, wanted)
        vb = _values(b, format_b, options, registry, wanted)
        for k in result.different:
            ck = canonical(k)
            lines.append(f"  {k!r}: {_short(va.get(ck))} != {_short(vb.get(ck))}")
    if result.n_only_in_a:
        lines.append(f"{result.n_only_in_a} key(s) only in {a}: " + ", ".join(repr(k) for k in result.only_in_a))
    if result.n_only_in_b:
        lines.append(f"{result.n_only_in_b} key(s) only in {b}: " + ", ".join(repr(k) for k in result.only_in_b))
    if result.a_records != result.b_records and not (result.n_only_in_a or result.n_only_in_b):
        lines.append("the record counts differ: one side repeats a key")
    return lines


def _values(path, fmt, options, registry, wanted):
    found = {}
    for key, value in read_records(Path(path), from_=fmt, options=options or Options(), registry=registry):
        ck = canonical(key)
        if ck in wanted:
            found[ck] = value
    return found


def _short(value, limit=120):
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
