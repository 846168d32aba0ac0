"""JSON for FHIR: decimals keep the precision they were written with.

FHIR says 1.50 and 1.5 are different values of a decimal. Parsing with Decimal keeps the written
form; orjson.Fragment writes it back verbatim, so a resource reads back exactly as it was sent.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import orjson


class JsonDecodeError(ValueError):
    pass


def loads(data: bytes | str) -> Any:
    """Parse JSON; decimals as Decimal. Refuses NaN/Infinity and lone surrogates (\\ud800
    escapes that stand for no character: they cannot be stored or hashed as UTF-8)."""
    try:
        parsed = json.loads(data, parse_float=Decimal, parse_constant=_reject_constant)
        # Only an escape can put NUL or a surrogate into JSON text: look for one before
        # walking every string.
        suspect = _SUSPECT_BYTES if isinstance(data, bytes) else _SUSPECT_TEXT
        if suspect.search(data):  # type: ignore[arg-type]
            _check_text(parsed)
        return parsed
    except (ValueError, UnicodeDecodeError) as error:
        raise JsonDecodeError(str(error)) from error
    except RecursionError as error:
        raise JsonDecodeError("the JSON is nested too deeply") from error


_SUSPECT_BYTES = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
_SUSPECT_TEXT = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


def _check_text(document: Any) -> None:
    stack = [document]
    while stack:
        node = stack.pop()
        kind = type(node)
        if kind is str:
            _check_string(node)
        elif kind is dict:
            for key, value in node.items():
                _check_string(key)
                stack.append(value)
        elif kind is list:
            stack.extend(node)


def _check_string(text: str) -> None:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ValueError(f"a string holds an unpaired surrogate: {text[:40]!r}") from error
    if "\x00" in text:
        raise ValueError("a string holds a NUL character (U+0000)")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise TypeError("non-finite decimal")
        return orjson.Fragment(str(value))
    raise TypeError(f"cannot serialise {type(value).__name__}")


class JsonEncodeError(ValueError):
    pass


def dumps(value: Any) -> bytes:
    """Compact JSON. orjson refuses documents nested more than 255 levels deep."""
    return _dumps(value, 0)


def dumps_pretty(value: Any) -> bytes:
    return _dumps(value, orjson.OPT_INDENT_2)


def _dumps(value: Any, option: int) -> bytes:
    try:
        return orjson.dumps(value, default=_default, option=option)
    except orjson.JSONEncodeError as error:
        if "Integer exceeds 64-bit range" not in str(error):
            raise JsonEncodeError(str(error)) from error
    # A decimal written as an integer of more digits than orjson's 64 bits hold (a rare
    # document, so looked for only when orjson refuses one): written as its digits.
    try:
        return orjson.dumps(_wide_integers(value), default=_default, option=option)
    except orjson.JSONEncodeError as error:
        raise JsonEncodeError(str(error)) from error


def _wide_integers(node: Any) -> Any:
    """A copy of `node` with integers beyond 64 bits as Decimals of the same digits."""
    kind = type(node)
    if kind is int and not -(2**63) <= node < 2**64:
        return Decimal(node)
    if kind is dict:
        return {key: _wide_integers(value) for key, value in node.items()}
    if kind is list:
        return [_wide_integers(value) for value in node]
    return node
