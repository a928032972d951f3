"""decode(): the tagged structure, as parsed, back to Python values; every tag payload's shape
is checked and a wrong one is a FormatError naming the tag."""

from __future__ import annotations

import base64
import binascii
import collections
import datetime as _dt
import decimal
import math

from converter.errors import FormatError

from .encoder import _DEFAULT_FACTORIES
from .fast import _FAST_DEPTH
from .text import _DECIMAL_TEXT, _INT_TEXT, _str_to_int, _type_name, _where, TAG_PREFIX
from .walk import _same, _Walk


# --- decode ---------------------------------------------------------------------

class _Malformed(Exception):
    """A tag payload with the wrong shape; decode() turns it into a FormatError naming the tag."""


def _need(condition, what):
    if not condition:
        raise _Malformed(what)


def _need_list(payload, length=None):
    _need(type(payload) is list and (length is None or len(payload) == length),
          "expected a list" if length is None else f"expected a list of {length}")
    return payload


def _need_str(payload):
    _need(type(payload) is str, "expected a string")
    return payload


def _need_keys(payload, required, optional=()):
    _need(type(payload) is dict and set(required) <= payload.keys() <= set(required) | set(optional),
          f"expected an object with keys {', '.join(required + tuple(optional))}")
    return payload


def _need_int(x, what="an int"):
    _need(type(x) is int, f"expected {what}")
    return x


def _flat_pairs(payload):
    children = []
    for pair in _need_list(payload):
        _need(type(pair) is list and len(pair) == 2, "expected [key, value] pairs")
        children.extend(pair)
    return children


def _check_members(members, name):
    """Keys or members about to be hashed: deep or shared tuples and hash flooding refused
    first (budget.py), since CPython hashes tuples recursively in C."""
    from converter import budget

    for member in members:
        if type(member) is tuple:
            budget.check_hashable(member, name)
    budget.check_collisions(members, name)


def _build_mapping(cls, results, factory=None):
    _check_members(results[0::2], "")
    out = cls() if factory is _NO_FACTORY else cls(factory)
    for i in range(0, len(results), 2):
        key = results[i]
        try:
            if key in out:
                raise _Malformed(f"duplicate key {key!r:.60}")
        except TypeError:
            raise _Malformed(f"unhashable key of type {_type_name(key)}") from None
        out[key] = results[i + 1]
    return out


_NO_FACTORY = object()


def _build_set(cls, results):
    _check_members(results, "")
    try:
        out = cls(results)
    except TypeError as exc:
        raise _Malformed(f"unhashable member ({exc})") from None
    _need(len(out) == len(results), "duplicate members")
    return out


def _b64(payload):
    try:
        return base64.b64decode(_need_str(payload), validate=True)
    except binascii.Error as exc:
        raise _Malformed(f"bad base64 ({exc})") from None


def _decode_str(payload):
    try:
        return _b64(payload).decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        raise _Malformed("not UTF-8 with surrogates") from None


def _decode_int(payload):
    _need(_INT_TEXT.fullmatch(_need_str(payload)) is not None, "expected decimal digits")
    return _str_to_int(payload)


_FLOATS = {"nan": math.nan, "-nan": -math.nan, "inf": math.inf, "-inf": -math.inf}


def _decode_float(payload):
    _need(type(payload) is str and payload in _FLOATS, "expected nan, -nan, inf or -inf")
    return _FLOATS[payload]


def _decode_decimal(payload):
    _need(_DECIMAL_TEXT.fullmatch(_need_str(payload)) is not None, "expected decimal text")
    return decimal.Decimal(payload)


def _decode_timedelta(payload):
    days, seconds, micro = _need_list(payload, 3)
    for x in payload:
        _need_int(x, "ints")
    return _dt.timedelta(days=days, seconds=seconds, microseconds=micro)


def _decode_timezone(payload):
    _need_keys(payload, ("offset",), ("name",))
    offset = _decode_timedelta(payload["offset"])
    if "name" in payload:
        return _dt.timezone(offset, _need_str(payload["name"]))
    return _dt.timezone(offset)


def _decode_zoneinfo(payload):
    import zoneinfo

    try:
        return zoneinfo.ZoneInfo(_need_str(payload))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise _Malformed(f"unknown time zone {payload!r} ({exc})") from None


def _need_tzinfo(x):
    _need(x is None or isinstance(x, _dt.tzinfo), "expected a $timezone or $zoneinfo tag or null for tz")
    return x


def _clock(cls):
    def children(payload):
        if type(payload) is str:
            return []
        _need_keys(payload, ("local", "tz", "fold"))
        _need(payload["fold"] in (0, 1) and type(payload["fold"]) is int, "fold must be 0 or 1")
        _need_str(payload["local"])
        return [payload["tz"]]

    def build(results, payload):
        if type(payload) is str:
            return cls.fromisoformat(payload)
        local = cls.fromisoformat(payload["local"])
        _need(local.tzinfo is None, "local must have no UTC offset")
        return local.replace(tzinfo=_need_tzinfo(results[0]), fold=payload["fold"])

    return children, build


def _defaultdict_children(payload):
    _need_keys(payload, ("factory", "items"))
    factory = payload["factory"]
    _need(factory is None or (type(factory) is str and factory in _DEFAULT_FACTORIES),
          "factory must be null or a builtin type name")
    return _flat_pairs(payload["items"])


def _deque_children(payload):
    _need_keys(payload, ("items", "maxlen"))
    maxlen = payload["maxlen"]
    _need(maxlen is None or (type(maxlen) is int and maxlen >= 0), "maxlen must be null or an int >= 0")
    items = _need_list(payload["items"])
    # a deque never holds more than maxlen items: a longer list would lose its first ones
    _need(maxlen is None or len(items) <= maxlen, f"{len(items)} items but maxlen {maxlen}")
    return items


def _escape_children(payload):
    _need(type(payload) is dict and len(payload) == 1 and next(iter(payload)).startswith(TAG_PREFIX),
          f"expected an object with one key starting with {TAG_PREFIX!r}")
    return list(payload.values())


def _complex_build(results, payload):
    _need(all(type(x) is float for x in results), "expected two floats")
    return complex(*results)


def _range_build(results, payload):
    for x in results:
        _need_int(x, "ints")
    return range(*results)


def _leaf(fn):
    return (lambda payload: []), (lambda results, payload: fn(payload))


# tag name -> (children(payload) -> list of encoded children, build(decoded children, payload) -> value)
_TAGS = {
    "escape": (_escape_children, lambda r, p: {next(iter(p)): r[0]}),
    "dict": (_flat_pairs, lambda r, p: _build_mapping(dict, r, _NO_FACTORY)),
    "ordereddict": (_flat_pairs, lambda r, p: _build_mapping(collections.OrderedDict, r, _NO_FACTORY)),
    "defaultdict": (_defaultdict_children, lambda r, p: _build_mapping(
        collections.defaultdict, r, _DEFAULT_FACTORIES.get(p["factory"]))),
    "tuple": (_need_list, lambda r, p: tuple(r)),
    "set": (_need_list, lambda r, p: _build_set(set, r)),
    "frozenset": (_need_list, lambda r, p: _build_set(frozenset, r)),
    "deque": (_deque_children, lambda r, p: collections.deque(r, p["maxlen"])),
    "bytes": _leaf(_b64),
    "bytearray": _leaf(lambda p: bytearray(_b64(p))),
    "str": _leaf(_decode_str),
    "int": _leaf(_decode_int),
    "float": _leaf(_decode_float),
    "complex": (lambda p: _need_list(p, 2), _complex_build),
    "decimal": _leaf(_decode_decimal),
    "date": _leaf(lambda p: _dt.date.fromisoformat(_need_str(p))),
    "datetime": _clock(_dt.datetime),
    "time": _clock(_dt.time),
    "timedelta": _leaf(_decode_timedelta),
    "timezone": _leaf(_decode_timezone),
    "zoneinfo": _leaf(_decode_zoneinfo),
    "range": (lambda p: _need_list(p, 3), _range_build),
    "slice": (lambda p: _need_list(p, 3), lambda r, p: slice(*r)),
}


def _tag_free(value, depth: int = 0) -> bool:
    """True if decode() would rebuild ``value`` unchanged: JSON types only, no one-key "$..."
    object, at most _FAST_DEPTH levels."""
    kind = type(value)
    if kind is dict:
        if len(value) == 1:
            for key in value:
                if type(key) is str and key.startswith(TAG_PREFIX):
                    return False
        items = value.values()
    elif kind is list:
        items = value
    else:
        return kind is str or kind is int or kind is float or kind is bool or value is None
    for item in items:
        kind = type(item)
        if kind is str or kind is int or kind is float or kind is bool or item is None:
            continue
        if (kind is dict or kind is list) and depth < _FAST_DEPTH and _tag_free(item, depth + 1):
            continue
        return False
    return True


def decode_parsed(obj, *, name: str = ""):
    """decode() for a value just parsed from JSON text (nothing else refers to it): returned
    as it is when it holds no tag, which is several times faster than rebuilding it."""
    if _tag_free(obj):
        return obj
    return decode(obj, name=name)


def decode(obj, *, name: str = ""):
    """Inverse of encode(): JSON-able structure (as parsed) -> Python value.

    Raises FormatError for an unknown tag or a malformed tag payload, naming the tag.
    """
    def convert(v, slots, slot):
        kind = type(v)
        if kind is dict:
            if len(v) == 1:
                (key, payload), = v.items()
                if type(key) is str and key.startswith(TAG_PREFIX):
                    tag = key[len(TAG_PREFIX):]
                    handlers = _TAGS.get(tag)
                    if handlers is None:
                        raise FormatError(f"{_where(name)}unknown tag {key!r}")
                    children_of, build = handlers
                    try:
                        children = children_of(payload)
                    except _Malformed as exc:
                        raise FormatError(f"{_where(name)}malformed {key} payload: {exc}") from None
                    walk.enter(v, _tag_builder(key, build, payload, name), slots, slot, children)
                    return
            keys = list(v)
            walk.enter(v, lambda r: dict(zip(keys, r)), slots, slot, list(v.values()))
        elif kind is list:
            walk.enter(v, _same, slots, slot, v)
        elif kind in (str, int, float, bool) or v is None:
            slots[slot] = v
        else:
            raise FormatError(f"{_where(name)}not a JSON value: {_type_name(v)}")

    walk = _Walk(name, convert)
    return walk.run(obj)


def _tag_builder(key, build, payload, name):
    def run(results):
        try:
            return build(results, payload)
        except _Malformed as exc:
            message = str(exc)
        except (ValueError, TypeError, OverflowError, decimal.InvalidOperation) as exc:
            message = f"{type(exc).__name__}: {exc}"
        raise FormatError(f"{_where(name)}malformed {key} payload: {message}")
    return run
