"""A Go heap profile (runtime/pprof WriteHeapProfile: gzipped profile.proto) read with the standard library.

Only what the harness reads is decoded: the sample types (`Profile.sample_type`, field 1), each
sample's values (`Sample.value`, field 2 of field 2) and the string table (field 6). Values are as
pprof wrote them, already scaled from the runtime's sampled records to estimated totals
(runtime/pprof protomem.go, scaleHeapSample): `inuse_space` is an estimate over allocations sampled
about every runtime.MemProfileRate bytes (512 KiB), as of the last completed GC, not HeapAlloc.
The format: github.com/google/pprof proto/profile.proto.
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path

# profile.proto field numbers the decoder reads.
PROFILE_SAMPLE_TYPE, PROFILE_SAMPLE, PROFILE_STRING_TABLE = 1, 2, 6
VALUE_TYPE_TYPE, VALUE_TYPE_UNIT = 1, 2
SAMPLE_VALUE = 2
# Protocol buffer wire types.
VARINT, FIXED64, LENGTH_DELIMITED, FIXED32 = 0, 1, 2, 5


class ProfileError(ValueError):
    """Bytes that are not a gzipped (or plain) profile.proto."""


@dataclass(frozen=True)
class HeapProfile:
    sample_types: tuple[tuple[str, str], ...]   # (type, unit) per value column: ("inuse_space", "bytes")
    totals: dict[str, int]                      # per sample type: the sum of its values over all samples
    samples: int

    def total(self, sample_type: str) -> int:
        if sample_type not in self.totals:
            raise ProfileError(f"the profile has no sample type {sample_type!r} "
                               f"(it has: {', '.join(self.totals) or 'none'})")
        return self.totals[sample_type]


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(data):
            raise ProfileError("truncated varint")
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i
        shift += 7
        if shift > 63:
            raise ProfileError("varint longer than 10 bytes")


def _signed(value: int) -> int:
    """An int64 field's varint read as two's complement."""
    return value - (1 << 64) if value >= 1 << 63 else value


def fields(data: bytes) -> list[tuple[int, int, int | bytes]]:
    """One message's fields in order: (field number, wire type, varint value or bytes)."""
    out: list[tuple[int, int, int | bytes]] = []
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == VARINT:
            value, i = _varint(data, i)
        elif wire == LENGTH_DELIMITED:
            n, i = _varint(data, i)
            if i + n > len(data):
                raise ProfileError(f"field {number}: {n} bytes past the end of the message")
            value, i = data[i:i + n], i + n
        elif wire in (FIXED64, FIXED32):
            n = 8 if wire == FIXED64 else 4
            value, i = int.from_bytes(data[i:i + n], "little"), i + n
        else:
            raise ProfileError(f"field {number}: wire type {wire} is not one profile.proto uses")
        out.append((number, wire, value))
    return out


def _int64s(wire: int, value: int | bytes) -> list[int]:
    """A repeated int64 field's values, packed (one length-delimited run) or not."""
    if wire == VARINT:
        assert isinstance(value, int)
        return [_signed(value)]
    assert isinstance(value, bytes)
    out, i = [], 0
    while i < len(value):
        v, i = _varint(value, i)
        out.append(_signed(v))
    return out


def parse_profile(raw: bytes) -> HeapProfile:
    """Decode a profile (gzipped, as pprof writes it, or plain) into its sample types and value totals."""
    try:
        data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except (OSError, EOFError, zlib.error) as e:
        raise ProfileError(f"not a gzipped profile: {e}") from e
    types: list[tuple[int, int]] = []
    strings: list[str] = []
    values: list[list[int]] = []
    for number, wire, value in fields(data):
        if wire != LENGTH_DELIMITED:
            continue
        assert isinstance(value, bytes)
        if number == PROFILE_SAMPLE_TYPE:
            vt = {n: v for n, w, v in fields(value) if w == VARINT}
            types.append((int(vt.get(VALUE_TYPE_TYPE, 0)), int(vt.get(VALUE_TYPE_UNIT, 0))))
        elif number == PROFILE_SAMPLE:
            values.append([x for n, w, v in fields(value) if n == SAMPLE_VALUE for x in _int64s(w, v)])
        elif number == PROFILE_STRING_TABLE:
            strings.append(value.decode("utf-8", "replace"))

    def text(index: int) -> str:
        if not 0 <= index < len(strings):
            raise ProfileError(f"string index {index} outside the string table ({len(strings)} strings)")
        return strings[index]

    sample_types = tuple((text(t), text(u)) for t, u in types)
    totals = {name: 0 for name, _ in sample_types}
    for row in values:
        if len(row) != len(sample_types):
            raise ProfileError(f"a sample has {len(row)} values for {len(sample_types)} sample types")
        for (name, _), v in zip(sample_types, row, strict=True):
            totals[name] += v
    return HeapProfile(sample_types, totals, len(values))


def inuse_space(path: Path) -> int:
    """pprof's inuse_space of a heap profile file: the sum of its samples' inuse_space values, in bytes."""
    return parse_profile(path.read_bytes()).total("inuse_space")
