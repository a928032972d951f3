"""The built-in value codecs: raw bytes, UTF-8 text, pickle and (tagged) JSON."""

from __future__ import annotations

import pickle

from converter import Codec, hookimpl
from converter.errors import FormatError, UnsupportedValueError


def _raw_encode(value, options):
    if not isinstance(value, bytes):
        raise UnsupportedValueError(f"{type(value).__name__} is not bytes")
    return value


def _utf8_decode(data, options, what):
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"{what}: not valid UTF-8 at byte {exc.start}") from None


def _utf8_encode(value, options):
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise UnsupportedValueError(f"text with an unpaired surrogate at index {exc.start} cannot be stored as UTF-8") from None


def _utf8_sniff(data):
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _pickle_sniff(data):
    from converter.safepickle import pickle_length, pickle_protocol

    # a value is a pickle when its opcodes end exactly at its last byte (nothing is unpickled)
    return pickle_protocol(data[:16]) is not None and pickle_length(data) == len(data)


def _pickle_decode(data, options, what):
    from converter.safepickle import loads

    return loads(data, what=what, **options.pickle_kwargs())


def _pickle_encode(value, options):
    try:
        return pickle.dumps(value, protocol=options.pickle_protocol)
    except Exception as exc:
        raise UnsupportedValueError(f"cannot pickle {type(value).__name__}: {exc}") from None


def _json_decode(data, options, what):
    from converter import jsontags

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"{what}: not valid UTF-8 JSON at byte {exc.start}") from None
    try:
        return jsontags.loads(text)
    except FormatError as exc:
        raise FormatError(f"{what}: {exc}") from None


def _json_encode(value, options):
    from converter import jsontags

    return jsontags.dumps(value).encode("utf-8")


@hookimpl
def register_codecs(register):
    register(Codec("pickle", _pickle_decode, _pickle_encode, "pickled Python values (the shelve codec)",
                   sniff=_pickle_sniff, accepts=lambda v: True, order=10))
    register(Codec("json", _json_decode, _json_encode, "JSON text, with converter's tags for non-JSON values", order=15))
    register(Codec("utf8", _utf8_decode, _utf8_encode, "UTF-8 text (str)",
                   sniff=_utf8_sniff, accepts=lambda v: isinstance(v, str), order=20))
    register(Codec("raw", lambda data, options, what: bytes(data), _raw_encode, "the stored bytes, unchanged",
                   sniff=lambda data: True, accepts=lambda v: isinstance(v, bytes), order=90))
