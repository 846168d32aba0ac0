r"""Search values as written: the escapes `\,` `\$` `\|` `\\` (R4 search §3.1.1.3.x), and the
numbers a search refuses."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yilian.errors import BadRequest
from yilian.fhir.search.values import parse_number, parse_quantity, split_escaped, unescape


def escape(text: str) -> str:
    return "".join("\\" + char if char in ",$|\\" else char for char in text)


@given(st.lists(st.text(alphabet="ab,$|\\", max_size=6), min_size=1, max_size=4),
       st.sampled_from(",$|"))
def test_escaped_parts_split_and_unescape_back(parts: list[str], on: str) -> None:
    written = on.join(escape(part) for part in parts)
    assert [unescape(part) for part in split_escaped(written, on)] == parts


def test_a_split_keeps_the_escapes_for_the_next_separator() -> None:
    # The OR list first, then a composite's `$`, then a token's `|`.
    (value,) = split_escaped(r"a\|b$c\,d\$e", ",")
    assert value == r"a\|b$c\,d\$e"
    assert split_escaped(value, "$") == [r"a\|b", r"c\,d\$e"]
    assert split_escaped(r"x\|y|z|w", "|", 1) == [r"x\|y", "z|w"]
    assert split_escaped(r"a\\|b", "|") == [r"a\\", "b"]  # an escaped backslash, then a bar


def test_other_backslashes_are_themselves() -> None:
    assert unescape(r"C:\temp\x") == r"C:\temp\x"
    assert unescape("trailing\\") == "trailing\\"


def test_a_quantity_splits_on_unescaped_bars_only() -> None:
    found = parse_quantity("value-quantity", r"5|urn:s\|t|m\|g")
    assert (found.system, found.code) == ("urn:s|t", "m|g")
    for text in (r"5\|urn:s|mg", "5|onlysystem"):  # `5|urn:s` is not a number
        with pytest.raises(BadRequest):
            parse_quantity("value-quantity", text)


@pytest.mark.parametrize("text", ["1e999999", "-1e999999", "1e-999999", "ap9.9e999999",
                                  "0e-999999"])
def test_numbers_within_the_exponent_limit_parse(text: str) -> None:
    parse_number("probability", text)


@pytest.mark.parametrize("text", ["1e1000000", "-1e99999999999", "1e-1000000", "ap1e99999999999",
                                  "gt-1e-99999999999", "0e99999999999"])
def test_numbers_beyond_the_exponent_limit_are_refused(text: str) -> None:
    with pytest.raises(BadRequest) as refused:
        parse_number("probability", text)
    assert refused.value.code == "YL-2020"
    assert refused.value.expression == ("probability",)
