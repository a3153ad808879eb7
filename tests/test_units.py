import pytest

from tinycc.units import parse_input_shape, parse_input_shapes, parse_size


@pytest.mark.parametrize(
    "text, size",
    [
        ("65536", 65536),
        ("1", 1),
        ("512B", 512),
        ("256k", 262144),
        ("256K", 262144),
        ("256KiB", 262144),
        ("256kb", 262144),
        ("256kB", 262144),
        ("256 k", 262144),
        (" 64k ", 65536),
        ("1M", 1024**2),
        ("1MiB", 1024**2),
        ("2m", 2 * 1024**2),
        ("1.5M", 1572864),
        ("0.5k", 512),
        (".5k", 512),
        ("1G", 1024**3),
        ("2.0KiB", 2048),
    ],
)
def test_parse_size_accepts_binary_units(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize(
    "text, reason",
    [
        ("", "expected a positive number"),
        ("k", "expected a positive number"),
        ("12q", "expected a positive number"),
        ("256 kilobytes", "expected a positive number"),
        ("-5k", "expected a positive number"),
        ("1e3", "expected a positive number"),
        ("inf", "expected a positive number"),
        ("1_000", "expected a positive number"),
        ("256kk", "expected a positive number"),
        ("1.1k", "not a whole number of bytes"),
        ("0.3", "not a whole number of bytes"),
        ("0", "must be positive"),
        ("0k", "must be positive"),
    ],
)
def test_parse_size_rejects_with_a_message_naming_the_text(text, reason):
    with pytest.raises(ValueError) as info:
        parse_size(text)
    assert repr(text) in str(info.value)
    assert reason in str(info.value)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("x=1x3x96x96", ("x", (1, 3, 96, 96))),
        ("x=1,3,96,96", ("x", (1, 3, 96, 96))),
        ("x=1X3X96X96", ("x", (1, 3, 96, 96))),
        ("input.1=1x49x10", ("input.1", (1, 49, 10))),
        ("a=b=2x3", ("a=b", (2, 3))),  # the name runs to the last '='
        ("serving_default:0=1x10", ("serving_default:0", (1, 10))),
        ("x=7", ("x", (7,))),
        (" x = 1 x 3 ", ("x", (1, 3))),
    ],
)
def test_parse_input_shape(text, expected):
    assert parse_input_shape(text) == expected


@pytest.mark.parametrize(
    "text, reason",
    [
        ("1x3x96x96", "expected NAME=DIMS"),
        ("=1x3", "expected NAME=DIMS"),
        ("x=", "expected NAME=DIMS"),
        ("x=1x3xHx96", "expected NAME=DIMS"),
        ("x=1x-3", "expected NAME=DIMS"),
        ("x=1xx3", "expected NAME=DIMS"),
        ("x=1.5x3", "expected NAME=DIMS"),
        ("x=1x3=", "expected NAME=DIMS"),
        ("x=1x0x3", "at least 1"),
    ],
)
def test_parse_input_shape_rejects(text, reason):
    with pytest.raises(ValueError) as info:
        parse_input_shape(text)
    assert repr(text) in str(info.value)
    assert reason in str(info.value)


def test_parse_input_shapes_collects_and_refuses_duplicates():
    assert parse_input_shapes(["a=1x2", "b=3"]) == {"a": (1, 2), "b": (3,)}
    assert parse_input_shapes([]) == {}
    with pytest.raises(ValueError, match="'a' is given more than one --input-shape"):
        parse_input_shapes(["a=1x2", "a=1x3"])
