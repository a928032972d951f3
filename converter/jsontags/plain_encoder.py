"""plain(): a Python value to ordinary JSON, each change counted (the lossy style)."""

from __future__ import annotations

import base64
import collections
import datetime as _dt
import decimal
import json
import math

from converter.errors import UnsupportedValueError

from .encoder import _has_lone_surrogate, encode
from .text import _LONE_SURROGATE_CHAR, _int_to_str, _type_name, _where, MAX_SAFE_INT
from .walk import _canonical_sort, _same, _Walk


# --- plain ----------------------------------------------------------------------

def _duration_text(td: _dt.timedelta) -> str:
    """ISO 8601 duration, e.g. "P1DT2H3M4.5S"; negative durations get a leading "-"."""
    total = (td.days * 86400 + td.seconds) * 10**6 + td.microseconds
    sign = "-" if total < 0 else ""
    total = abs(total)
    seconds, micro = divmod(total, 10**6)
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    text = sign + "P" + (f"{days}D" if days else "")
    clock = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if seconds or micro or not (days or clock):
        clock += f"{seconds}.{micro:06d}".rstrip("0").rstrip(".") + "S"
    return text + ("T" + clock if clock else "")


def _plain_bytes(b) -> str:
    try:
        return bytes(b).decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(b).decode("ascii")


def plain(value, changes: collections.Counter, *, name: str = ""):
    """Python value -> ordinary JSON-able structure, changing what JSON cannot hold.

    Each change is counted in ``changes`` under a short label (see the module
    docstring).  Raises UnsupportedValueError for types it cannot convert at all
    and for cyclic values.
    """
    def text(s: str) -> str:
        if _has_lone_surrogate(s):
            changes["str with lone surrogate"] += 1
            return _LONE_SURROGATE_CHAR.sub("\ufffd", s)
        return s

    def key_text(k):
        kind = type(k)
        if kind is str:
            return text(k)
        changes["non-str key"] += 1
        if k is None or kind is bool:
            return json.dumps(k)
        if kind is int:
            return _int_to_str(k)
        if kind is float:  # as json.dumps writes float keys
            if math.isnan(k):
                return "NaN"
            return float.__repr__(k) if math.isfinite(k) else ("Infinity" if k > 0 else "-Infinity")
        if kind is bytes or kind is bytearray:
            return text(_plain_bytes(k))
        encode(k, name=name)  # refuses what tagged JSON could not hold either, rather than write "<Thing at 0x..>"
        return text(str(k))

    def build_dict(keys):
        def build(results):
            out = dict(zip(keys, results))
            if len(out) != len(keys):
                changes["key collision"] += len(keys) - len(out)
            return out
        return build

    def count(label):
        changes[label] += 1

    def convert(v, slots, slot):
        kind = type(v)
        if kind is str:
            slots[slot] = text(v)
        elif kind is int:
            if not -MAX_SAFE_INT <= v <= MAX_SAFE_INT:
                count("int beyond 2**53")
            slots[slot] = v
        elif kind is float:
            if math.isfinite(v):
                slots[slot] = v
            else:
                count("float nan/inf")
                slots[slot] = None
        elif v is None or kind is bool:
            slots[slot] = v
        elif kind is list:
            walk.enter(v, _same, slots, slot, v)
        elif kind is dict or kind is collections.OrderedDict or kind is collections.defaultdict:
            if kind is not dict:
                count(kind.__name__)
            keys = [key_text(k) for k in v]
            walk.enter(v, build_dict(keys), slots, slot, list(v.values()))
        elif kind is tuple or kind is collections.deque:
            count(kind.__name__)
            walk.enter(v, _same, slots, slot, list(v))
        elif kind is set or kind is frozenset:
            count(kind.__name__)
            walk.enter(v, _canonical_sort, slots, slot, list(v))
        elif kind is bytes or kind is bytearray:
            count(kind.__name__)
            slots[slot] = text(_plain_bytes(v))
        elif kind in (_dt.datetime, _dt.date, _dt.time):
            count(kind.__name__)
            slots[slot] = v.isoformat()
        elif kind is _dt.timedelta:
            count("timedelta")
            slots[slot] = _duration_text(v)
        elif kind is _dt.timezone:
            count("timezone")
            slots[slot] = v.tzname(None)
        elif kind.__module__ == "zoneinfo" and kind.__name__ == "ZoneInfo":
            count("zoneinfo")
            slots[slot] = str(v)
        elif kind is decimal.Decimal:
            count("Decimal")
            slots[slot] = str(v)
        elif kind is complex:
            count("complex")
            parts = [v.real, v.imag]
            for i, part in enumerate(parts):
                if not math.isfinite(part):
                    count("float nan/inf")
                    parts[i] = None
            slots[slot] = parts
        elif kind is range or kind is slice:
            count(kind.__name__)
            slots[slot] = repr(v)
        else:
            raise UnsupportedValueError(f"{_where(name)}cannot write a value of type {_type_name(v)} as JSON "
                                            f"(a pickle output, .pkl, holds it)")

    walk = _Walk(name, convert)
    return walk.run(value)
