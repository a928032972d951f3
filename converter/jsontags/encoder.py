"""encode(): a Python value to the lossless tagged structure (see the package docstring)."""

from __future__ import annotations

import base64
import collections
import datetime as _dt
import decimal
import math
import sys

from converter.errors import UnsupportedValueError

from .text import _LONE_SURROGATE_CHAR, _int_to_str, _type_name, _where, MAX_SAFE_INT, TAG_PREFIX
from .walk import _canonical_sort, _same, _Walk


# --- encode ---------------------------------------------------------------------

_DEFAULT_FACTORIES = {
    t.__name__: t
    for t in (list, dict, set, frozenset, tuple, int, float, complex, str, bytes, bytearray, bool)
}


def _tag(name, payload):
    return {TAG_PREFIX + name: payload}


def _float_payload(x: float):
    if math.isnan(x):
        return "-nan" if math.copysign(1.0, x) < 0 else "nan"
    return "inf" if x > 0 else "-inf"


def _encode_float(x: float):
    return x if math.isfinite(x) else _tag("float", _float_payload(x))


def _encode_int(n: int):
    return n if -MAX_SAFE_INT <= n <= MAX_SAFE_INT else _tag("int", _int_to_str(n))


def _has_lone_surrogate(s: str) -> bool:
    return not s.isascii() and _LONE_SURROGATE_CHAR.search(s) is not None


def _encode_str(s: str):
    if _has_lone_surrogate(s):
        return _tag("str", base64.b64encode(s.encode("utf-8", "surrogatepass")).decode("ascii"))
    return s


def _timedelta_payload(td: _dt.timedelta):
    return [td.days, td.seconds, td.microseconds]


def _timezone_payload(tz: _dt.timezone):
    args = tz.__getinitargs__()  # (offset,) or (offset, name): tells whether a name was given
    payload = {"offset": _timedelta_payload(args[0])}
    if len(args) > 1:
        payload["name"] = args[1]
    return payload


def _encode_tzinfo(tz, name):
    if tz is None:
        return None
    if type(tz) is _dt.timezone:
        return _tag("timezone", _timezone_payload(tz))
    zoneinfo = sys.modules.get("zoneinfo")
    if zoneinfo is not None and type(tz) is zoneinfo.ZoneInfo and tz.key is not None:
        return _tag("zoneinfo", tz.key)
    raise UnsupportedValueError(
        f"{_where(name)}cannot write tzinfo of type {_type_name(tz)} as JSON "
        f"(only datetime.timezone and zoneinfo.ZoneInfo with a key)"
    )


def _iso_is_exact(value) -> bool:
    """Does isoformat() alone carry this datetime/time (tz, name, fold) through fromisoformat()?"""
    tz = value.tzinfo
    return value.fold == 0 and (tz is None or (type(tz) is _dt.timezone and len(tz.__getinitargs__()) == 1))


def _encode_clock(tag, value, name):
    if _iso_is_exact(value):
        return _tag(tag, value.isoformat())
    return _tag(tag, {
        "local": value.replace(tzinfo=None, fold=0).isoformat(),
        "tz": _encode_tzinfo(value.tzinfo, name),
        "fold": value.fold,
    })


def _pairs(mapping):
    children = []
    for k, v in mapping.items():
        children.append(k)
        children.append(v)
    return children


def _build_pairs(results):
    return [[results[i], results[i + 1]] for i in range(0, len(results), 2)]


def _is_plain_key(key) -> bool:
    return type(key) is str and not _has_lone_surrogate(key)


def encode(value, *, name: str = ""):
    """Python value -> lossless JSON-able structure (dicts with str keys, lists, str, int, float, bool, None).

    See the module docstring for the tags.  Raises UnsupportedValueError naming
    the type for anything else, and for cyclic values.
    """
    def convert(v, slots, slot):
        kind = type(v)
        if kind is str:
            slots[slot] = _encode_str(v)
        elif kind is int:
            slots[slot] = _encode_int(v)
        elif kind is float:
            slots[slot] = _encode_float(v)
        elif v is None or kind is bool:
            slots[slot] = v
        elif kind is list:
            walk.enter(v, _same, slots, slot, v)
        elif kind is dict:
            if all(_is_plain_key(k) for k in v):
                if len(v) == 1 and next(iter(v)).startswith(TAG_PREFIX):
                    (key, item), = v.items()
                    walk.enter(v, lambda r, key=key: _tag("escape", {key: r[0]}), slots, slot, [item])
                else:
                    keys = list(v)
                    walk.enter(v, lambda r, keys=keys: dict(zip(keys, r)), slots, slot, list(v.values()))
            else:
                walk.enter(v, lambda r: _tag("dict", _build_pairs(r)), slots, slot, _pairs(v))
        elif kind is tuple:
            walk.enter(v, lambda r: _tag("tuple", r), slots, slot, v)
        elif kind is set or kind is frozenset:
            tag = kind.__name__
            walk.enter(v, lambda r, tag=tag: _tag(tag, _canonical_sort(r)), slots, slot, list(v))
        elif kind is bytes or kind is bytearray:
            slots[slot] = _tag(kind.__name__, base64.b64encode(v).decode("ascii"))
        elif kind is _dt.datetime:
            slots[slot] = _encode_clock("datetime", v, name)
        elif kind is _dt.date:
            slots[slot] = _tag("date", v.isoformat())
        elif kind is _dt.time:
            slots[slot] = _encode_clock("time", v, name)
        elif kind is _dt.timedelta:
            slots[slot] = _tag("timedelta", _timedelta_payload(v))
        elif kind is decimal.Decimal:
            slots[slot] = _tag("decimal", str(v))
        elif kind is complex:
            slots[slot] = _tag("complex", [_encode_float(v.real), _encode_float(v.imag)])
        elif kind is collections.OrderedDict:
            if v.__dict__:  # attributes set by a pickle's BUILD: the tag holds items only
                raise UnsupportedValueError(
                    f"{_where(name)}an OrderedDict with instance attributes ({', '.join(map(str, v.__dict__))}) "
                    f"cannot be written as JSON without losing them; write pickle, or a dbm/shelve output")
            walk.enter(v, lambda r: _tag("ordereddict", _build_pairs(r)), slots, slot, _pairs(v))
        elif kind is collections.defaultdict:
            factory = v.default_factory
            if factory is not None and _DEFAULT_FACTORIES.get(getattr(factory, "__name__", None)) is not factory:
                raise UnsupportedValueError(
                    f"{_where(name)}cannot write a defaultdict whose default_factory is {factory!r} as JSON "
                    f"(only None or a builtin type such as list)"
                )
            fname = None if factory is None else factory.__name__
            walk.enter(v, lambda r, f=fname: _tag("defaultdict", {"factory": f, "items": _build_pairs(r)}),
                       slots, slot, _pairs(v))
        elif kind is collections.deque:
            maxlen = v.maxlen
            walk.enter(v, lambda r, m=maxlen: _tag("deque", {"items": r, "maxlen": m}), slots, slot, list(v))
        elif kind is range:
            slots[slot] = _tag("range", [_encode_int(v.start), _encode_int(v.stop), _encode_int(v.step)])
        elif kind is slice:
            walk.enter(v, lambda r: _tag("slice", r), slots, slot, [v.start, v.stop, v.step])
        elif kind is _dt.timezone:
            slots[slot] = _encode_tzinfo(v, name)
        elif kind.__module__ == "zoneinfo" and kind.__name__ == "ZoneInfo":
            slots[slot] = _encode_tzinfo(v, name)
        else:
            raise UnsupportedValueError(f"{_where(name)}cannot write a value of type {_type_name(v)} as JSON "
                                            f"(a pickle output, .pkl, holds it)")

    walk = _Walk(name, convert)
    return walk.run(value)

