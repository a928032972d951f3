"""The fast path: values that are already plain JSON are checked in Python and written by
json's C encoder, one value or a whole batch in one call."""

from __future__ import annotations

import itertools
import json

from .text import _LONE_SURROGATE_CHAR, _quote, MAX_SAFE_INT, TAG_PREFIX


# --- the fast path for values that are already plain JSON ---------------------
#
# Most records are dicts of str, small ints and floats, which both styles write
# unchanged: checking that in Python and letting json's C encoder write the text
# is several times faster than encode() + json.dumps().  Anything else (a tag to
# write, a change to count, a cycle, deep nesting) takes the general path.

def _refuse(obj):
    raise TypeError(type(obj).__name__)


try:  # json's C encoder with dumps' compact options, made once (json.dumps makes one per call)
    _c_encode = json.encoder.c_make_encoder(None, _refuse, _quote, None, ":", ",", False, False, False)
except (AttributeError, TypeError):  # no _json accelerator, or a signature this code does not know
    _c_encode = None
try:  # make sure it writes what json.dumps writes (a future json could change its arguments)
    _probe = {"a": [1, -2.5, "\u00e9\n", None, True, {}]}
    if _c_encode is not None and "".join(_c_encode(_probe, 0)) != json.dumps(
            _probe, ensure_ascii=False, allow_nan=False, separators=(",", ":")):
        _c_encode = None
except Exception:  # noqa: BLE001 - any surprise means: do without it
    _c_encode = None
try:  # the same with dict members sorted (verify's canonical form), checked the same way
    _c_encode_sorted = json.encoder.c_make_encoder(None, _refuse, _quote, None, ":", ",", True, False, False)
    if _c_encode is None or "".join(_c_encode_sorted(_probe, 0)) != json.dumps(
            _probe, ensure_ascii=False, allow_nan=False, separators=(",", ":"), sort_keys=True):
        _c_encode_sorted = None
except Exception:  # noqa: BLE001
    _c_encode_sorted = None

_FAST_DEPTH = 64  # deeper values (and cycles) take the general path


def _is_plain(value, depth: int = 0, seen: set | None = None) -> bool:
    """True if ``value`` is JSON as it is: exact dict/list/str/int/float/bool/None, str keys,
    ints within +/-(2**53-1), no one-key "$..." dict, at most _FAST_DEPTH levels, no nested
    container met twice (``seen``: their ids; a shared one takes the general path, which
    bounds how far shared references may expand).

    Lone surrogates and NaN/inf are not checked here: the caller finds them in the text
    (or json's encoder refuses them)."""
    kind = type(value)
    if kind is dict:
        for key in value:
            if type(key) is not str:
                return False
        if len(value) == 1 and key.startswith(TAG_PREFIX):
            return False
        items = value.values()
    elif kind is list:
        items = value
    elif kind is int:
        return -MAX_SAFE_INT <= value <= MAX_SAFE_INT
    else:
        return kind is str or kind is float or kind is bool or value is None
    for item in items:
        kind = type(item)
        if kind is str:
            continue
        if kind is int:
            if -MAX_SAFE_INT <= item <= MAX_SAFE_INT:
                continue
            return False
        if kind is float or item is None or kind is bool:
            continue
        if (kind is dict or kind is list) and depth < _FAST_DEPTH:
            if seen is None:
                seen = set()
            count = len(seen)
            seen.add(id(item))
            if len(seen) > count and _is_plain(item, depth + 1, seen):
                continue
        return False
    return True


def _plain_text(value):
    """Compact JSON text of a value that both styles write unchanged, or None."""
    if type(value) is str:  # e.g. every value of a dbm file of text
        if not value.isascii() and _LONE_SURROGATE_CHAR.search(value):
            return None
        return _quote(value)
    if _c_encode is None or not _is_plain(value):
        return None
    try:
        text = "".join(_c_encode(value, 0))
    except ValueError:  # NaN or inf: a $float tag, or a change to count
        return None
    if not text.isascii() and _LONE_SURROGATE_CHAR.search(text):
        return None  # a $str tag (or a $dict for such a key), or a change to count
    return text


# --- the same fast path for a batch of values ----------------------------------
#
# One C encoder call per value spends most of its time building and joining that call's
# chunks; one call for a whole batch is about twice as fast. The batch is checked level by
# level with set(map(type, ...)) instead of value by value, and its values are separated in
# the text by a sentinel string that no check lets through unnoticed (see plain_texts).

_JSON_TYPES = frozenset((dict, list, str, int, float, bool, type(None)))
_SCALAR_TYPES = frozenset((str, int, float, bool, type(None)))
_STR_ONLY = frozenset((str,))
_SPLIT = "\x00\x01split"
_SPLIT_TEXT = ',"\\u0000\\u0001split",'


def _batch_is_plain(values: list) -> bool:
    """True if every value could be plain JSON as it is (what _is_plain checks, bar NaN and
    lone surrogates, which plain_texts finds in the text), one level at a time."""
    items = values
    seen: set = set()
    for depth in range(_FAST_DEPTH + 1):
        types = set(map(type, items))
        if int in types:
            ints = items if len(types) == 1 else [x for x in items if type(x) is int]
            if max(ints) > MAX_SAFE_INT or min(ints) < -MAX_SAFE_INT:
                return False
        if types <= _SCALAR_TYPES:
            return True
        if not types <= _JSON_TYPES:
            return False
        if types <= {dict, list}:
            containers = items
        else:
            containers = [x for x in items if type(x) is dict or type(x) is list]
        if depth:  # a nested container met twice takes the general path (it bounds expansion)
            ids = set(map(id, containers))
            if len(ids) != len(containers) or not seen.isdisjoint(ids):
                return False
            seen |= ids
        if dict in types:
            dicts = containers if list not in types else [x for x in containers if type(x) is dict]
            if not set(map(type, itertools.chain.from_iterable(dicts))) <= _STR_ONLY:
                return False
            if 1 in set(map(len, dicts)) and any(
                    len(d) == 1 and next(iter(d)).startswith(TAG_PREFIX) for d in dicts):
                return False
            inner = itertools.chain.from_iterable(map(dict.values, dicts))
            if list in types:
                lists = [x for x in containers if type(x) is list]
                inner = itertools.chain(inner, itertools.chain.from_iterable(lists))
            items = list(inner)
        else:
            items = list(itertools.chain.from_iterable(containers))
    return False


def plain_texts(values: list, *, sort_keys: bool = False):
    """The compact JSON text of each value (as _plain_text gives it), or None unless every
    value is one that both styles write unchanged; the caller then takes them one by one.

    ``sort_keys`` writes dict members sorted, as ``verify``'s canonical form does.
    """
    encode_batch = _c_encode_sorted if sort_keys else _c_encode
    if encode_batch is None or not values or not _batch_is_plain(values):
        return None
    interleaved = [_SPLIT] * (2 * len(values) - 1)
    interleaved[::2] = values
    try:
        text = "".join(encode_batch(interleaved, 0))
    except (ValueError, RecursionError):  # NaN or inf, an int past the digit limit, too deep
        return None
    if not text.isascii() and _LONE_SURROGATE_CHAR.search(text):
        return None
    texts = text[1:-1].split(_SPLIT_TEXT)
    # a value holding the sentinel string itself splits into more parts: take them one by one
    return texts if len(texts) == len(values) else None
