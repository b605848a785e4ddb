import pytest

from harness.define.units import (
    UnitError,
    canonical_size,
    format_duration,
    format_size,
    parse_bool,
    parse_duration,
    parse_gogc,
    parse_gomemlimit,
    parse_positive_duration,
    parse_size,
)

MiB = 1 << 20
GiB = 1 << 30


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1GiB", GiB),
        ("1.5GiB", GiB + GiB // 2),
        ("512MiB", 512 * MiB),
        ("64KiB", 64 * 1024),
        ("8B", 8),
        ("4096", 4096),
        (4096, 4096),
        ("100MB", 100_000_000),
        ("1KB", 1000),
        ("2GB", 2 * 10**9),
        ("1TiB", 1 << 40),
        (" 3 MiB ", 3 * MiB),
        ("0", 0),
    ],
)
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("1gib", "unknown size unit 'gib'"),
        ("1 GB2", "not a size"),
        ("lots", "not a size"),
        ("1.5B", "whole number of bytes"),
        ("-1MiB", "not a size"),
        (True, "not a size"),
        (-5, "negative"),
        ("1XiB", "valid: B, KiB"),
    ],
)
def test_parse_size_errors(text, fragment):
    with pytest.raises(UnitError, match=fragment.replace(".", r"\.").replace("(", r"\(")):
        parse_size(text)


@pytest.mark.parametrize(
    "n, expected",
    [
        (GiB, "1GiB"),
        (GiB + GiB // 2, "1.5GiB"),
        (1536 * MiB, "1.5GiB"),
        (512 * MiB, "512MiB"),
        (512, "512B"),
        (0, "0B"),
        (1000, "1000B"),
        (1234567, "1.2MiB"),
        (-MiB, "-1MiB"),
    ],
)
def test_format_size(n, expected):
    assert format_size(n) == expected


@pytest.mark.parametrize("n, expected", [(1536 * MiB, "1536MiB"), (GiB, "1GiB"), (1000, "1000B"), (0, "0B")])
def test_canonical_size_is_exact(n, expected):
    assert canonical_size(n) == expected
    assert parse_size(canonical_size(n)) == n


@pytest.mark.parametrize(
    "text, expected",
    [
        ("500ms", 0.5),
        ("2s", 2.0),
        ("3m", 180.0),
        ("1m30s", 90.0),
        ("1h", 3600.0),
        ("100us", 1e-4),
        ("0", 0.0),
        ("0s", 0.0),
        ("1.5s", 1.5),
        (2, 2.0),
    ],
)
def test_parse_duration(text, expected):
    assert parse_duration(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["2", "s", "1 m", "1d", "", "-1s", "5sec"])
def test_parse_duration_errors(text):
    with pytest.raises(UnitError, match="units ns, us, ms, s, m, h"):
        parse_duration(text)


@pytest.mark.parametrize(
    "seconds, expected",
    [(0, "0s"), (0.5, "500ms"), (2, "2s"), (90, "1m30s"), (180, "3m"), (3600, "1h"), (3690, "1h1m30s"),
     (1e-4, "100us"), (1.5, "1.5s")],
)
def test_format_duration_round_trips(seconds, expected):
    assert format_duration(seconds) == expected
    assert parse_duration(expected) == pytest.approx(seconds)


@pytest.mark.parametrize("text, expected", [("50", "50"), (300, "300"), ("off", "off"), ("OFF", "off"), ("0", "0")])
def test_parse_gogc(text, expected):
    assert parse_gogc(text) == expected


@pytest.mark.parametrize("text", ["-1", "fifty", "1.5", ""])
def test_parse_gogc_errors(text):
    with pytest.raises(UnitError, match="non-negative integer percentage"):
        parse_gogc(text)


@pytest.mark.parametrize(
    "text, limit, expected",
    [
        ("512MiB", None, str(512 * MiB)),
        ("90%", GiB, str(int(GiB * 0.9))),
        ("80%", 512 * MiB, str(int(512 * MiB * 0.8))),
        ("off", GiB, "off"),
        ("100%", 1000, "1000"),
    ],
)
def test_parse_gomemlimit(text, limit, expected):
    assert parse_gomemlimit(text, limit) == expected


@pytest.mark.parametrize(
    "text, limit, fragment",
    [
        ("90%", None, "needs a memory limit"),
        ("150%", GiB, "must be in"),
        ("lots", GiB, "GOMEMLIMIT is a size"),
        ("x%", GiB, "GOMEMLIMIT is a size"),
    ],
)
def test_parse_gomemlimit_errors(text, limit, fragment):
    with pytest.raises(UnitError, match=fragment):
        parse_gomemlimit(text, limit)


@pytest.mark.parametrize("text, expected", [("true", True), ("False", False), (True, True), ("1", True), ("0", False)])
def test_parse_bool(text, expected):
    assert parse_bool(text) is expected


def test_parse_bool_error():
    with pytest.raises(UnitError, match="valid: true, false"):
        parse_bool("maybe")


@pytest.mark.parametrize("text, seconds", [("1s", 1.0), ("500ms", 0.5), (90, 90.0)])
def test_a_positive_duration(text, seconds):
    assert parse_positive_duration(text) == seconds


@pytest.mark.parametrize("text", ["0", "0s", 0])
def test_a_positive_duration_is_longer_than_zero(text):
    with pytest.raises(UnitError, match="must be longer than 0s"):
        parse_positive_duration(text)
