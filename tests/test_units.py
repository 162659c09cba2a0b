import math

import pytest

from harness.units import duration, is_missing, milliseconds, number


@pytest.mark.parametrize("value, text", [
    (None, "–"), (float("nan"), "–"), (True, "yes"), (12, "12"), (12345, "12,345"), (2.0, "2"),
    (0.0, "0"), (4.87e-15, "≈0"), (-6.39e-16, "≈0"), (0.000391, "0.000391"), (3.91e-05, "0.0000391"),
    (-2.5e-06, "-0.00000250"), (0.00263, "0.00263"), (0.5, "0.5"),
    (3.14159, "3.14"), (31.4159, "31.4"), (314.159, "314"), (31415.9, "31,416"), (math.inf, "∞"),
    ("abc", "abc"),
])
def test_number_is_readable_and_never_scientific(value, text):
    assert number(value) == text


@pytest.mark.parametrize("seconds, text", [
    (0.000546, "546 µs"), (0.00263, "2.63 ms"), (0.5, "500 ms"), (1.234, "1.23 s"), (0.0, "0 ms"), (None, "–"),
])
def test_duration_picks_a_readable_unit(seconds, text):
    assert duration(seconds) == text


def test_milliseconds_scales_seconds():
    assert milliseconds(0.0125) == "12.5" and milliseconds(None) == "–"


def test_missing_values():
    assert is_missing(None) and is_missing(float("nan")) and not is_missing(0) and not is_missing("x")
