"""Lossless "tagged" JSON for Python values, and the lossy "plain" alternative.

Plain data stays plain JSON: a dict with str keys, a list, a str, an int within
+/-(2**53-1), a finite float (including -0.0, which JSON and Python's json
round-trip as ``-0.0``), True/False and None are written as themselves, so
``{"Omkar": {"key": "Omkar", "age": 21}}`` encodes to exactly that structure.

Every other supported value is written as a *tag*: a JSON object with exactly one
key, ``TAG_PREFIX`` + the tag name, whose value is the payload.  An object is a
tag only if it has exactly one key and that key starts with ``$``; a user dict of
that shape (``{"$set": 1}`` from MongoDB data) is wrapped in ``$escape`` so it
reads back unchanged.  Objects with two or more keys are never tags, whatever
their keys look like.  Reading an unknown tag, or a tag whose payload does not
have the documented shape, is a FormatError naming the tag.

=================  ===========================  ======================================================
Tag                Python value                 Payload
=================  ===========================  ======================================================
``$escape``        dict with one key "$..."     ``{"$key": <encoded value>}`` (the key is not a tag)
``$dict``          dict with a key that is not  ``[[<encoded key>, <encoded value>], ...]`` in order
                   a str (or holds a lone
                   surrogate)
``$ordereddict``   collections.OrderedDict      ``[[<encoded key>, <encoded value>], ...]`` in order
``$defaultdict``   collections.defaultdict      ``{"factory": "list"|"dict"|..., or null, "items": [[k, v], ...]}``;
                                                factory must be None or a builtin type (list, dict,
                                                set, frozenset, tuple, int, float, complex, str, bytes,
                                                bytearray, bool)
``$tuple``         tuple                        ``[<encoded item>, ...]``
``$set``           set                          ``[<encoded item>, ...]`` sorted by the items' compact
``$frozenset``     frozenset                    JSON text, so the output is stable between runs
``$deque``         collections.deque            ``{"items": [<encoded item>, ...], "maxlen": int|null}``
``$bytes``         bytes                        standard base64 text with padding
``$bytearray``     bytearray                    standard base64 text with padding
``$str``           str holding a lone surrogate base64 of ``s.encode("utf-8", "surrogatepass")``
                   (U+D800..U+DFFF unpaired)    (UTF-8 JSON text cannot hold such a str)
``$int``           int beyond +/-(2**53-1)      decimal text, e.g. ``"-9007199254740993"``; any size
                                                (not limited by Python's 4300-digit int<->str limit)
``$float``         float NaN, +inf, -inf        ``"nan"``, ``"-nan"`` (sign bit set), ``"inf"``,
                                                ``"-inf"``; other NaN payload bits are not kept
``$complex``       complex                      ``[<encoded real>, <encoded imag>]`` (floats, so NaN
                                                and inf parts are ``$float`` tags)
``$decimal``       decimal.Decimal              ``str(d)``: keeps sign, exponent, -0, NaN, sNaN,
                                                NaN payloads, Infinity, -Infinity
``$date``          datetime.date                ``date.isoformat()``, e.g. ``"2024-02-29"``
``$datetime``      datetime.datetime            ``isoformat()`` text when it says everything: naive
                                                or a datetime.timezone without a name, and fold 0,
                                                e.g. ``"2024-02-29T13:45:00.000001+05:30"``.
                                                Otherwise ``{"local": <naive isoformat>,
                                                "tz": <encoded tzinfo>|null, "fold": 0|1}``
``$time``          datetime.time                same two forms as ``$datetime``
``$timedelta``     datetime.timedelta           ``[days, seconds, microseconds]`` (its normalised fields)
``$timezone``      datetime.timezone            ``{"offset": [days, seconds, microseconds]}``, plus
                                                ``"name": str`` when one was given
``$zoneinfo``      zoneinfo.ZoneInfo            its key, e.g. ``"Europe/Paris"`` (needs tz data when read)
``$range``         range                        ``[<encoded start>, <encoded stop>, <encoded step>]``
``$slice``         slice                        ``[<encoded start>, <encoded stop>, <encoded step>]``
=================  ===========================  ======================================================

Types are matched exactly: a subclass (a namedtuple, an IntEnum, a str subclass)
would lose its class, so it is refused with UnsupportedValueError naming the type,
like any other instance, function or tzinfo this table does not list.  A cyclic
value is refused too ("cyclic value cannot be written as JSON").  Shared
(non-cyclic) references are written once per reference: JSON has no sharing.

Nesting depth is not limited: encode(), decode(), plain(), dumps() and loads()
work without recursion (Python's json module is tried first and, when it hits
its recursion limit near depth 1000, an iterative writer/parser takes over), so
100,000 nested lists round-trip.  Deep values are slower (a few seconds per
100,000 levels of tagged containers) and ``dumps(..., indent=N)`` of a deep
value grows with the square of its depth, as every line carries its indentation.

``plain()`` writes ordinary JSON that other programs understand and counts each
change by a short label: "bytes" (UTF-8 text if it decodes, else base64 text),
"bytearray", "tuple"/"set"/"frozenset"/"deque" (-> list; sets sorted like
above), "OrderedDict"/"defaultdict" (-> object), "datetime"/"date"/"time"
(-> isoformat), "timedelta" (-> ISO 8601 duration such as "-P1DT2H3M4.5S"),
"timezone"/"zoneinfo" (-> its name or key), "Decimal" (-> str), "complex" (->
[real, imag]), "float nan/inf" (-> null), "str with lone surrogate" (each one
-> U+FFFD), "range"/"slice" (-> their repr text), "non-str key" (None, bools,
ints and floats become "null", "true"/"false", "1", "1.5" as json.dumps writes
them; other keys become their plain text or str()), "key collision" (two keys
became the same text: the later value is kept), and "int beyond 2**53" (kept as
an exact JSON number, but many JSON readers round it).  Tag-looking dicts are
left alone: plain JSON has no tags.

Reading is strict: NaN/Infinity, duplicate keys, lone surrogates written as
``\\ud800`` escapes (the str could not be written as UTF-8 again) and trailing
data are FormatErrors.  Integers of any length are read exactly.  A number too
large for a float (``1e400``) reads as inf, as in Python's json module.
"""

from __future__ import annotations

import base64
import binascii
import collections
import datetime as _dt
import decimal
import itertools
import json
import math
import re
import sys

from converter.errors import FormatError, UnsupportedValueError

TAG_PREFIX = "$"

MAX_SAFE_INT = 2**53 - 1

# Python 3.11 refuses int<->str conversions beyond sys.get_int_max_str_digits()
# digits (4300 by default, never below 640).  Big ints are converted in pieces of
# at most this many digits so every size works whatever the limit is set to.
_DIGITS_PER_PIECE = 600

# A lone surrogate can never come from UTF-8 text, only from a \uXXXX escape.
_LONE_SURROGATE_CHAR = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE_HINT = re.compile(r"\\u[dD][89a-fA-F]")
# An escape that is not itself escaped (an even run of backslashes before it):
# a high surrogate with its low partner (fine), or a surrogate standing alone.
_SURROGATE_ESCAPE = re.compile(
    r"(?<!\\)(?:\\\\)*(\\u[dD][89abAB][0-9a-fA-F]{2})(\\u[dD][c-fC-F][0-9a-fA-F]{2})?"
    r"|(?<!\\)(?:\\\\)*(\\u[dD][c-fC-F][0-9a-fA-F]{2})"
)
_INT_TEXT = re.compile(r"-?(?:0|[1-9][0-9]*)")
_DECIMAL_TEXT = re.compile(
    r"[-+]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|Inf(?:inity)?|s?NaN[0-9]*)",
    re.IGNORECASE,
)


def _where(name: str) -> str:
    return f"{name}: " if name else ""


def _type_name(value) -> str:
    cls = type(value)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def _short(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


# --- ints of any size ---------------------------------------------------------

def _int_to_str(n: int) -> str:
    """Decimal text of any int, without tripping the int->str digit limit."""
    try:
        return int.__repr__(n)
    except ValueError:
        pass
    from converter.budget import check_int_digits

    check_int_digits(n)  # beyond it the conversion is too slow to offer to any input
    if n < 0:
        return "-" + _int_to_str(-n)
    # log10(2) = 0.30103: a digit-count estimate that only sizes the split
    return _int_to_str_digits(n, int(n.bit_length() * 0.30103) + 1)


def _int_to_str_digits(n: int, approx_digits: int) -> str:
    if approx_digits <= _DIGITS_PER_PIECE:
        return int.__repr__(n)
    half = approx_digits // 2
    high, low = divmod(n, 10**half)
    low_text = _int_to_str_digits(low, half).rjust(half, "0")
    if high == 0:
        return low_text.lstrip("0") or "0"
    return _int_to_str_digits(high, approx_digits - half + 1) + low_text


def _str_to_int(text: str) -> int:
    """int() of decimal text of any length (within the budget's digits), without tripping the
    str->int digit limit."""
    if len(text) <= _DIGITS_PER_PIECE:
        return int(text)
    from converter.budget import check_digit_text

    check_digit_text(len(text))
    return _str_to_int_pieces(text)


def _str_to_int_pieces(text: str) -> int:
    if len(text) <= _DIGITS_PER_PIECE:
        return int(text)
    if text[0] in "+-":
        value = _str_to_int_pieces(text[1:])
        return -value if text[0] == "-" else value
    half = len(text) // 2
    return _str_to_int_pieces(text[:-half]) * 10**half + _str_to_int_pieces(text[-half:])


# --- strict parsing -----------------------------------------------------------

def object_pairs_hook(pairs) -> dict:
    """``json.loads(..., object_pairs_hook=object_pairs_hook)``: a plain dict, duplicate keys refused.

    No tag decoding happens here; decode() is a separate step.
    """
    result = dict(pairs)
    if len(result) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise FormatError(f"duplicate key {_short(key)}")
            seen.add(key)
    return result


def _refuse_constant(name):
    raise FormatError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(object_pairs_hook=object_pairs_hook, parse_constant=_refuse_constant)
_BIG_INT_DECODER = json.JSONDecoder(
    object_pairs_hook=object_pairs_hook, parse_constant=_refuse_constant, parse_int=_str_to_int
)
_scan_once = _DECODER.scan_once
_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"(-?(?:0|[1-9][0-9]*))(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_scanstring = json.decoder.scanstring


def _raw_decode(text: str, idx: int = 0):
    """Parse one JSON value at text[idx] (no leading whitespace): (value, end).

    Raises json.JSONDecodeError for a syntax error (callers use its msg and pos to
    tell a value cut by a buffer end from a broken one) and FormatError for
    strictness violations; FormatError.pos is set when the position is known.
    """
    try:
        value, end = _scan_once(text, idx)  # what _DECODER.raw_decode(text, idx) does, minus a call
    except StopIteration as exc:
        raise json.JSONDecodeError("Expecting value", text, exc.value) from None
    except RecursionError:
        value, end = _raw_decode_iterative(text, idx)
    except json.JSONDecodeError:
        raise
    except ValueError:
        # only the int digit limit raises a plain ValueError here: retry with exact big ints
        try:
            value, end = _BIG_INT_DECODER.raw_decode(text, idx)
        except RecursionError:
            value, end = _raw_decode_iterative(text, idx)
    if _SURROGATE_ESCAPE_HINT.search(text, idx, end):
        for match in _SURROGATE_ESCAPE.finditer(text, idx, end):
            if match.group(2) is None:
                group = 1 if match.group(1) is not None else 3
                escape, pos = match.group(group), match.start(group)
                err = FormatError(f"lone surrogate escape {escape} (UTF-8 cannot hold it)")
                err.pos = pos
                raise err
    return value, end


def _raw_decode_iterative(text: str, idx: int):
    """The same grammar and errors as json's scanner, without recursion (for deep nesting)."""
    err = json.JSONDecodeError
    ws = _WS.match
    stack = []  # per open container: a list (array) or a list of pairs plus the pending key
    pos = idx
    while True:
        # parse one value starting at pos
        char = text[pos:pos + 1]
        if char == "{":
            pos = ws(text, pos + 1).end()
            if text[pos:pos + 1] == "}":
                value, pos = object_pairs_hook([]), pos + 1
            else:
                pairs = []
                key, pos = _parse_key(text, pos)
                stack.append((pairs, key))
                continue
        elif char == "[":
            pos = ws(text, pos + 1).end()
            if text[pos:pos + 1] == "]":
                value, pos = [], pos + 1
            else:
                stack.append(([], None))
                continue
        elif char == '"':
            value, pos = _scanstring(text, pos + 1, True)
        elif text.startswith("null", pos):
            value, pos = None, pos + 4
        elif text.startswith("true", pos):
            value, pos = True, pos + 4
        elif text.startswith("false", pos):
            value, pos = False, pos + 5
        else:
            for constant in ("NaN", "Infinity", "-Infinity"):
                if text.startswith(constant, pos):
                    _refuse_constant(constant)
            match = _NUMBER.match(text, pos)
            if match is None:
                raise err("Expecting value", text, pos)
            whole, frac, exp = match.groups()
            value = float(match.group()) if frac or exp else _str_to_int(whole)
            pos = match.end()
        # attach the finished value to its parents, closing those that end here
        while True:
            if not stack:
                return value, pos
            container, key = stack[-1]
            if key is None:
                container.append(value)
            else:
                container.append((key, value))
            pos = ws(text, pos).end()
            char = text[pos:pos + 1]
            if char == ",":
                pos = ws(text, pos + 1).end()
                if key is not None:
                    key, pos = _parse_key(text, pos)
                    stack[-1] = (container, key)
                break
            if char == ("]" if key is None else "}"):
                stack.pop()
                value = container if key is None else object_pairs_hook(container)
                pos += 1
                continue
            raise err("Expecting ',' delimiter", text, pos)


def _parse_key(text: str, pos: int):
    """Key and ':' of an object member at pos; returns (key, position of its value)."""
    if text[pos:pos + 1] != '"':
        raise json.JSONDecodeError("Expecting property name enclosed in double quotes", text, pos)
    key, pos = _scanstring(text, pos + 1, True)
    pos = _WS.match(text, pos).end()
    if text[pos:pos + 1] != ":":
        raise json.JSONDecodeError("Expecting ':' delimiter", text, pos)
    return key, _WS.match(text, pos + 1).end()


def loads(text, *, name: str = ""):
    """Strictly parse one JSON document (str, or UTF-8 bytes) and decode its tags.

    A leading UTF-8 BOM is skipped.  NaN/Infinity, duplicate keys, lone
    surrogates, trailing data and bad syntax raise FormatError naming the position.
    """
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FormatError(f"{_where(name)}invalid UTF-8 at byte {exc.start}") from None
    elif not text.isascii():
        bad = _LONE_SURROGATE_CHAR.search(text)
        if bad:
            raise FormatError(f"{_where(name)}lone surrogate character at character {bad.start()}")
    if text.startswith("\ufeff"):
        text = text[1:]
    start = _WS.match(text).end()
    if start == len(text):
        raise FormatError(f"{_where(name)}{'empty text' if not text else 'no JSON value, only whitespace'}")
    try:
        value, end = _raw_decode(text, start)
    except json.JSONDecodeError as exc:
        raise FormatError(f"{_where(name)}{_problem(exc)} at {_line_col(text, exc.pos)}") from None
    except FormatError as exc:
        pos = getattr(exc, "pos", None)
        at = f" at {_line_col(text, pos)}" if pos is not None else ""
        raise FormatError(f"{_where(name)}{exc}{at}") from None
    end = _WS.match(text, end).end()
    if end != len(text):
        raise FormatError(f"{_where(name)}extra data after the JSON value at {_line_col(text, end)}")
    return decode_parsed(value, name=name)


def _problem(exc: json.JSONDecodeError) -> str:
    """json's message without its dangling "at" (we add our own position)."""
    msg = exc.msg
    for tail in (" starting at", " at"):
        if msg.endswith(tail):
            return msg[:-len(tail)]
    return msg


def _line_col(text: str, pos: int) -> str:
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return f"line {line} column {col} (char {pos})"


# --- writing JSON text ---------------------------------------------------------

_quote = json.encoder.encode_basestring  # ensure_ascii=False quoting, C accelerated


def _to_text(obj, indent=None) -> str:
    """JSON text of an already JSON-able structure (the output of encode or plain)."""
    separators = (",", ":") if indent is None else (",", ": ")
    try:
        return json.dumps(obj, ensure_ascii=False, allow_nan=False, check_circular=False,
                          indent=indent, separators=separators)
    except (RecursionError, ValueError):
        # too deep for json's C encoder, or an int beyond the int->str digit limit
        return _to_text_iterative(obj, indent)


def _to_text_iterative(obj, indent=None) -> str:
    """Same text as json.dumps with our options, without recursion or digit limits."""
    if isinstance(indent, int):
        indent = " " * indent
    key_sep = ":" if indent is None else ": "
    out = []
    add = out.append
    stack = []  # [iterator, is_dict, has_items]
    value = obj
    while True:
        kind = type(value)
        if kind is dict or kind is list:
            stack.append([iter(value.items() if kind is dict else value), kind is dict, False])
            add("{" if kind is dict else "[")
        elif kind is str:
            add(_quote(value))
        elif value is None:
            add("null")
        elif value is True:
            add("true")
        elif value is False:
            add("false")
        elif kind is int:
            add(_int_to_str(value))
        elif kind is float:
            if not math.isfinite(value):
                raise ValueError(f"Out of range float values are not JSON compliant: {value!r}")
            add(float.__repr__(value))
        else:
            raise TypeError(f"Object of type {kind.__name__} is not JSON serializable")
        while stack:
            frame = stack[-1]
            item = next(frame[0], _END)
            if item is _END:
                stack.pop()
                if frame[2] and indent is not None:
                    add("\n" + indent * len(stack))
                add("}" if frame[1] else "]")
                continue
            if frame[2]:
                add(",")
            frame[2] = True
            if indent is not None:
                add("\n" + indent * len(stack))
            if frame[1]:
                key, value = item
                add(_quote(key))
                add(key_sep)
            else:
                value = item
            break
        else:
            return "".join(out)


_END = object()


def dumps(value, *, style: str = "tagged", changes: collections.Counter | None = None,
          indent=None, name: str = "") -> str:
    """One value as JSON text: ``style="tagged"`` is lossless, ``"plain"`` counts its changes in ``changes``.

    Always valid UTF-8-encodable JSON (no NaN/Infinity, no lone surrogates).  With
    indent=None the text is compact (``,`` and ``:`` separators); otherwise json's
    indented layout with ``": "`` after keys.
    """
    if indent is None and (style == "tagged" or style == "plain"):
        text = _plain_text(value)
        if text is not None:
            return text
    return _dumps_general(value, style, changes, indent, name)


def _dumps_general(value, style, changes, indent, name) -> str:
    """dumps() without its fast path (for callers that tried _plain_text first)."""
    if style == "tagged":
        obj = encode(value, name=name)
    elif style == "plain":
        obj = plain(value, changes if changes is not None else collections.Counter(), name=name)
    else:
        raise ValueError(f"style must be 'tagged' or 'plain', not {style!r}")
    return _to_text(obj, indent)


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


# --- the shared iterative walker ----------------------------------------------
#
# encode, plain and decode are written as loops over an explicit stack so that
# nesting depth is limited by memory, not by Python's recursion limit.  A
# container pushes a "finish" item first and then one item per child; the
# children are converted into slots of a list (or dict) and the finish item,
# popped after all of them, builds the result and stores it in its own slot.

_FINISH = object()


_SCALARS = frozenset((str, int, float, bool, type(None)))


# The budget for shared references (a value whose containers are not shared never meets it):
# the items written again for shared containers may exceed the budget's ``shared`` limit only
# while they stay within SHARED_FACTOR times the value's distinct items. The pickle writer uses
# the same rule, as fast-mode pickling also writes a shared container once per use.
from converter.budget import SHARED_FACTOR as EXPANSION_FACTOR, active as _active_budget


def expansion_message(name: str, distinct: int, repeated: int) -> str:
    """The error for a value whose shared references expand past the budget."""
    limit = _active_budget().shared
    return (f"{_where(name)}shared references expand to more than {distinct + repeated:,} values "
            f"({distinct:,} distinct), and this output writes each use in full: refused (the limit is "
            f"{limit:,} repeated values and {EXPANSION_FACTOR} times the distinct ones; "
            f"--budget shared=N raises it)")


class _Walk:
    def __init__(self, name, convert):
        self.name = name
        self.convert = convert  # convert(value, slots, slot): store a leaf's result, or enter() a container
        self.stack = []
        self.active = set()  # ids of containers being converted: seeing one again is a cycle
        # A container met again after it was converted is shared: JSON has no references, so
        # it is written again in full. Shared references can make a tiny pickle expand to
        # 10**12 values, so the items written again are counted against a budget (see
        # budget.py); the ids stay valid as the value being walked holds every container.
        self.done = set()
        self.distinct = 0  # items of the containers met for the first time
        self.repeated = 0  # items written again because their container is shared
        limit = _active_budget().shared
        self.limit = limit if limit is not None else float("inf")

    def enter(self, value, build, slots, slot, children):
        """Convert ``children`` into a list of results, then store build(results) in slots[slot]."""
        key = id(value)
        if key in self.active:
            raise UnsupportedValueError(f"{_where(self.name)}cyclic value cannot be written as JSON")
        if key in self.done:
            self.repeated += len(children)
            if self.repeated > self.limit and self.repeated > EXPANSION_FACTOR * self.distinct:
                raise UnsupportedValueError(expansion_message(self.name, self.distinct, self.repeated))
        else:
            self.distinct += len(children)
        self.active.add(key)
        results = [None] * len(children)
        push = self.stack.append
        push((_FINISH, key, build, results, slots, slot))
        convert = self.convert
        for i, item in enumerate(children):
            if type(item) in _SCALARS:
                convert(item, results, i)  # a leaf: no need for a stack item
            else:
                push((item, results, i))

    def run(self, value):
        root = [None]
        stack = self.stack
        stack.append((value, root, 0))
        pop = stack.pop
        convert = self.convert
        while stack:
            item = pop()
            if item[0] is _FINISH:
                _, key, build, results, slots, slot = item
                self.active.discard(key)
                self.done.add(key)
                slots[slot] = build(results)
            else:
                convert(item[0], item[1], item[2])
        return root[0]


def _canonical_sort(items: list) -> list:
    """Sort converted set members by their compact JSON text (stable output across runs)."""
    if len(items) > 1:
        items.sort(key=_to_text)
    return items


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


def _same(results):
    return results


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
