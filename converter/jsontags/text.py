"""JSON text itself: strict parsing (duplicate keys, NaN, lone surrogates and trailing data
refused; ints of any size read exactly, in pieces, within the budget) and writing without
recursion or digit limits. Nothing here knows about tags but their prefix."""

from __future__ import annotations

import json
import math
import re

from converter.errors import FormatError


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
