"""The heap profile decoder (harness.run.observe.heapprofile) and the Observation that reads a workload's profile."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from harness.define.cell import Cell
from harness.run.observation import Observation
from harness.run.observe.heapprofile import ProfileError, inuse_space, parse_profile

DATA = Path(__file__).parent / "data"
# alloc-release --size 64MiB --live 8MiB --heap-profile, built with Go 1.19.8: `go tool pprof
# -sample_index=inuse_space -top` says "8704.20kB total" (8913104 B: the 8 MiB live set plus the runtime's own).
REAL = DATA / "heap-release-go1.19.pb.gz"


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number: int, payload: bytes | int) -> bytes:
    if isinstance(payload, int):
        return varint(number << 3) + varint(payload)
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def profile(samples: list[list[int]], packed: bool = True) -> bytes:
    strings = ["", "inuse_objects", "count", "inuse_space", "bytes"]
    msg = field(1, field(1, 1) + field(2, 2)) + field(1, field(1, 3) + field(2, 4))
    for values in samples:
        body = field(1, b"".join(varint(1) for _ in range(2)))   # location ids, ignored
        if packed:
            body += field(2, b"".join(varint(v & (1 << 64) - 1) for v in values))
        else:
            body += b"".join(field(2, v & (1 << 64) - 1) for v in values)
        msg += field(2, body)
    return gzip.compress(msg + b"".join(field(6, s.encode()) for s in strings))


def test_a_real_go_heap_profile_sums_as_pprof_does():
    got = parse_profile(REAL.read_bytes())
    assert [t for t, _ in got.sample_types] == ["alloc_objects", "alloc_space", "inuse_objects", "inuse_space"]
    assert inuse_space(REAL) == 8913104


@pytest.mark.parametrize("packed", [True, False])
def test_values_packed_or_not_are_summed_per_sample_type(packed):
    got = parse_profile(profile([[3, 3 << 20], [1, 512], [0, -0]], packed=packed))
    assert got.totals == {"inuse_objects": 4, "inuse_space": (3 << 20) + 512} and got.samples == 3


def test_negative_int64_values_read_as_twos_complement():
    assert parse_profile(profile([[1, -5], [1, 10]])).total("inuse_space") == 5


@pytest.mark.parametrize("raw, message", [
    (b"\x1f\x8b\x08\x00garbage", "not a gzipped profile"),
    (gzip.compress(b"\x0a\x05ab"), "past the end of the message"),
    (gzip.compress(b"\x0b"), "wire type 3"),
])
def test_bad_bytes_are_one_profile_error(raw, message):
    with pytest.raises(ProfileError, match=message):
        parse_profile(raw)


def test_a_profile_without_inuse_space_says_what_it_has():
    raw = gzip.compress(field(1, field(1, 1) + field(2, 2)) + field(6, b"") + field(6, b"samples") + field(6, b"count"))
    with pytest.raises(ProfileError, match=r"no sample type 'inuse_space' \(it has: samples\)"):
        inuse_space_of(raw)


def inuse_space_of(raw: bytes) -> int:
    return parse_profile(raw).total("inuse_space")


def test_observation_reads_the_profile_a_heapprofile_line_names(tmp_path):
    (tmp_path / "heap-release.pb.gz").write_bytes(profile([[1, 7 << 20]]))
    obs = Observation(Cell(cell_id="c", scenario="s", workload="alloc-release", args=()))
    obs.scratch = tmp_path
    line = {"t": 123, "ev": "heapprofile", "phase": "release", "file": "heap-release.pb.gz", "bytes": 100}
    obs._feed_stdout(json.dumps(line), 124)
    assert (123, "runtime", "pprof_inuse_space", float(7 << 20)) in obs.parser.samples
    assert any(e[1] == "heapprofile" and e[2] == "release" for e in obs.parser.events)


def test_observation_notes_a_profile_it_cannot_read(tmp_path):
    obs = Observation(Cell(cell_id="c", scenario="s", workload="alloc-release", args=()))
    obs.scratch = tmp_path
    obs._feed_stdout(json.dumps({"t": 1, "ev": "heapprofile", "phase": "release", "file": "gone.pb.gz",
                                 "bytes": 1}), 2)
    assert "heap profile gone.pb.gz at the end of release" in obs.sampler_stats["heap_profile"]
    assert not [s for s in obs.parser.samples if s[2] == "pprof_inuse_space"]
