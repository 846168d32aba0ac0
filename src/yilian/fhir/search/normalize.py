"""Normalised forms of indexed values: text, hashes, decimals with their implicit precision.

The query side must compute exactly the same forms, so the text normaliser and the hash are the
kit's (`yilian.kit.text`, `yilian.kit.hashing`), re-exported here; this module only adds the
fast paths and the search-specific pieces.
"""

from __future__ import annotations

from decimal import (
    MAX_EMAX,
    MIN_EMIN,
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    InvalidOperation,
)
from functools import lru_cache
from typing import Any

from yilian.kit.hashing import hash64 as _kit_hash64
from yilian.kit.text import MAX_INDEXED_LENGTH, normalize_for_search

__all__ = [
    "NUMBER_MAX",
    "NUMBER_MIN",
    "fit_column",
    "hash64",
    "normalize_text",
    "precision_range",
    "to_decimal",
]

# Column widths of the idx_* tables (yilian.fhir.store.tables); values are cut to fit so a
# long code or URL never fails a write. Hashes are computed on the full values.
STRING_WIDTH = MAX_INDEXED_LENGTH  # value_norm, value_exact
TOKEN_WIDTH = 400  # system, code, text, type_system
TYPE_CODE_WIDTH = 200
REF_PART_WIDTH = 64  # target_type, target_id, target_version
URL_WIDTH = 800  # reference url, uri
QUANTITY_CODE_WIDTH = 200  # code, unit

# Numeric(38, 10) holds 28 integer digits: the open ends of ranges (Range without high, `<5`).
NUMBER_MIN = Decimal("-9999999999999999999999999999")
NUMBER_MAX = Decimal("9999999999999999999999999999")


# Arithmetic on written decimals without rounding (the default context keeps 28 digits), over
# every exponent a Decimal can have: the default's ±999999 made a resource holding
# 1e99999999999 fail its write with decimal.Overflow. Nothing traps: a result past even these
# exponents becomes ±Infinity, which `fit_column` clamps like any number too large.
_EXACT = Context(prec=200, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[])

_SCALE = Decimal("1e-10")  # the index columns' scale: Numeric(38, 10)
_WIDE = Context(prec=60)


@lru_cache(maxsize=1 << 16)
def hash64(*parts: str | None) -> int:
    """Stable signed 64-bit hash (blake2b, 8 bytes) of the parts; the kit's, memoised because
    systems, codes and parameter names repeat across nearly every write."""
    return _kit_hash64(*parts)


@lru_cache(maxsize=1 << 16)
def normalize_text(value: str) -> str:
    """Search form of a string (casefolded, accents stripped, spaces collapsed, ≤ 200 chars).

    Same result as `normalize_for_search`; ASCII text (most codes, displays and Latin names)
    skips the Unicode decomposition, which it would leave unchanged anyway. Memoised: displays
    and names repeat across writes.
    """
    if value.isascii():
        return " ".join(value.casefold().split())[:STRING_WIDTH]
    return normalize_for_search(value)


def to_decimal(value: Any) -> Decimal | None:
    """A JSON number as a Decimal. Resources parsed by yilian.kit.jsonfmt carry Decimals that
    keep the digits as written; floats (other parsers) go through repr, their shortest form."""
    if type(value) is Decimal:
        return value if value.is_finite() else None
    if type(value) is int:
        return Decimal(value)
    if type(value) is float:
        try:
            result = Decimal(repr(value))
        except InvalidOperation:  # pragma: no cover - repr of a float is always valid
            return None
        return result if result.is_finite() else None
    if type(value) is str:  # tolerated: numbers written as strings
        try:
            result = Decimal(value)
        except InvalidOperation:
            return None
        return result if result.is_finite() else None
    return None


def precision_range(value: Decimal) -> tuple[Decimal, Decimal]:
    """The interval a decimal stands for by its written precision: 100 → [99.5, 100.5),
    1e2 → [50, 150), 5.40 → [5.395, 5.405). The upper bound is exclusive."""
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)  # finite values only
    half = Decimal((0, (5,), exponent - 1))
    return _EXACT.subtract(value, half), _EXACT.add(value, half)


def fit_column(number: Decimal, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    """Within what the Numeric(38, 10) index columns hold: beyond ±NUMBER_MAX the column's
    end, beyond ten decimal places rounded (`rounding`: outwards for a range's ends). Both
    sides store and search values so: an absurd value never fails a write (PostgreSQL refuses
    a numeric of more than 16383 decimal places, 1e-20000 included), and a search for 1e999
    compares with the largest number stored, not an error from the database."""
    if number < NUMBER_MIN:
        return NUMBER_MIN
    if number > NUMBER_MAX:
        return NUMBER_MAX
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -10:
        return number.quantize(_SCALE, rounding=rounding, context=_WIDE)
    return number
