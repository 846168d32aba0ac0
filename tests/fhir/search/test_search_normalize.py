"""Normalised text, decimals and hashes: the forms the query side must compute identically."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from yilian.fhir.search.normalize import normalize_text, precision_range, to_decimal
from yilian.kit.text import normalize_for_search


@given(st.text(max_size=300))
def test_the_fast_path_agrees_with_the_kit(value: str) -> None:
    assert normalize_text(value) == normalize_for_search(value)


@given(st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), max_size=50))
def test_cjk_unified_ideographs_are_unchanged(value: str) -> None:
    assert normalize_text(value) == value


def test_examples() -> None:
    assert normalize_text("  José   GARCÍA\tde la Peña ") == "jose garcia de la pena"
    assert normalize_text("Straße") == "strasse"
    assert normalize_text("王小明") == "王小明"
    assert normalize_text("ＡＢＣ１２３") == "abc123"  # full-width forms
    assert normalize_text("x" * 300) == "x" * 200


@given(
    st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**12), max_value=10**12)
)
def test_a_decimal_lies_in_the_middle_of_its_precision_range(value: Decimal) -> None:
    low, high = precision_range(value)
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    assert low < value < high
    assert high - low == Decimal(1).scaleb(exponent)
    assert value - low == high - value


def test_precision_ranges_of_any_exponent() -> None:
    assert precision_range(Decimal("1e99999999999")) == (Decimal("5e99999999998"),
                                                         Decimal("1.5e99999999999"))
    assert precision_range(Decimal("-1e-99999999999")) == (Decimal("-1.5e-99999999999"),
                                                           Decimal("-5e-100000000000"))


def test_to_decimal() -> None:
    assert to_decimal(Decimal("1.50")) == Decimal("1.50")
    assert str(to_decimal(Decimal("1.50"))) == "1.50"
    assert str(to_decimal(1.5)) == "1.5"
    assert str(to_decimal(100)) == "100"
    assert to_decimal(True) is None
    assert to_decimal(float("nan")) is None
    assert to_decimal("abc") is None
