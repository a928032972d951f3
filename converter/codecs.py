"""Applying value codecs to a key-value store's records (bytes -> values, values -> bytes).

Reading: a forced codec, or the first codec (in ``Codec.order``) whose ``sniff`` accepts every
key (or value) in a sample of the first records. Writing: a forced codec, or the codec with
the highest ``order`` whose ``accepts`` takes every sampled key (or value): plain bytes stay
bytes, text is stored as UTF-8, anything else is pickled. A record after the sample that does
not fit the chosen codec is an error naming it, never a silent change.
"""

from __future__ import annotations

from itertools import chain, islice
from typing import Iterable, Iterator

from .errors import ConverterError, FormatError, UnsupportedValueError

SAMPLE_SIZE = 100


def _sample(records: Iterable) -> tuple[list, Iterator]:
    it = iter(records)
    sample = list(islice(it, SAMPLE_SIZE))
    return sample, chain(sample, it)


def _pick_for_reading(registry, forced, samples, role, options, name):
    if forced:
        return registry.codec(forced), "forced"
    for codec in sorted(registry.codecs.values(), key=lambda c: c.order):
        if codec.sniff is not None and all(codec.sniff(s) for s in samples):
            if samples:
                options.note(f"{name}: {role}s read as {codec.name} (detected; --{role}-codec to force)")
            return codec, "detected from the first records"
    raise ConverterError(f"{name}: no codec can read its {role}s; pick one with --{role}-codec")


def decode_records(records, registry, options, name, key_codec=None, value_codec=None, keys=True) -> Iterator[tuple]:
    """Turn (bytes, bytes) records into (key, value) with the chosen codecs (keys as they are if not ``keys``)."""
    sample, records = _sample(records)
    if keys:
        kc, kwhy = _pick_for_reading(registry, options.key_codec or key_codec, [k for k, _ in sample], "key", options, name)
    else:
        kc, kwhy = None, ""
    vc, vwhy = _pick_for_reading(registry, options.value_codec or value_codec, [v for _, v in sample], "value", options, name)
    for raw_key, raw_value in records:
        key = _decode(kc, raw_key, options, name, lambda: f"key {raw_key!r} of {name}", "key", kwhy) if kc else raw_key
        value = _decode(vc, raw_value, options, name, lambda: f"record {key!r} of {name}", "value", vwhy)
        yield key, value


def _decode(codec, data, options, name, what, role, why):
    # ``what`` names the record in error messages only: it is built only when a decode fails
    try:
        return codec.decode(data, options, name)
    except ConverterError:
        try:
            codec.decode(data, options, what())
        except FormatError as exc:
            raise FormatError(f"{exc} ({role} codec {codec.name}, {why}; try --{role}-codec raw)") from exc
        raise


def _pick_for_writing(registry, forced, samples, role, options, name):
    if forced:
        return registry.codec(forced), "forced"
    for codec in sorted(registry.codecs.values(), key=lambda c: -c.order):
        if codec.accepts is not None and all(codec.accepts(s) for s in samples):
            if samples:
                options.note(f"{name}: {role}s stored as {codec.name} (chosen from the first records; --{role}-codec to force)")
            return codec, f"chosen from the first {len(samples)} records"
    raise UnsupportedValueError(f"{name}: no codec can store these {role}s; pick one with --{role}-codec")


def encode_records(records, registry, options, name, key_codec=None, value_codec=None) -> Iterator[tuple[bytes, bytes]]:
    """Turn (key, value) records into (bytes, bytes) with the chosen codecs."""
    sample, records = _sample(records)
    kc, kwhy = _pick_for_writing(registry, options.key_codec or key_codec, [k for k, _ in sample], "key", options, name)
    vc, vwhy = _pick_for_writing(registry, options.value_codec or value_codec, [v for _, v in sample], "value", options, name)
    for key, value in records:
        if kc.accepts is not None and not kc.accepts(key):
            raise UnsupportedValueError(
                f"{name}: key {key!r} is {type(key).__name__}, which the key codec {kc.name} ({kwhy}) cannot store; "
                f"choose another with --key-codec"
            )
        if vc.accepts is not None and not vc.accepts(value):
            raise UnsupportedValueError(
                f"{name}: the value of record {key!r} is {type(value).__name__}, which the value codec {vc.name} "
                f"({vwhy}) cannot store; choose another with --value-codec (pickle holds any plain data)"
            )
        try:
            yield kc.encode(key, options), vc.encode(value, options)
        except ConverterError as exc:
            raise type(exc)(f"{name}: record {key!r}: {exc}") from exc
