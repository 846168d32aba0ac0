"""The primitive data types: JSON types, the R4 regexes, ranges and real calendar dates."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from yilian.fhir.validate.primitives import CHECKS

XHTML = "http://www.w3.org/1999/xhtml"

VALID: list[tuple[str, Any]] = [
    ("boolean", True),
    ("boolean", False),
    ("integer", 0),
    ("integer", -(2**31)),
    ("integer", 2**31 - 1),
    ("unsignedInt", 0),
    ("positiveInt", 1),
    ("decimal", Decimal("72.50")),
    ("decimal", Decimal("-1.5E+3")),
    ("decimal", 3),
    ("string", "王小明"),
    ("string", "line one\nline two\ttabbed"),
    ("string", "全角\u3000空格"),  # an ideographic space is text, not ASCII whitespace
    ("string", "   "),
    ("markdown", "# Title\n\n* item"),
    ("code", "entered-in-error"),
    ("code", "Patient, Device"),  # single inner spaces are allowed
    ("id", "a-B.9"),
    ("id", "x" * 64),
    ("uri", "urn:ietf:rfc:3986"),
    ("uri", "http://医联.cn/fhir"),
    ("url", "https://example.org/fhir/Patient/1"),
    ("canonical", "http://hl7.org/fhir/ValueSet/administrative-gender|4.0.1"),
    ("oid", "urn:oid:2.16.840.1.113883"),
    ("uuid", "urn:uuid:c757873d-ec9a-4326-a141-556f43239520"),
    ("date", "2024"),
    ("date", "2024-02"),
    ("date", "2024-02-29"),
    ("date", "2000-02-29"),
    ("date", "0001-01-01"),
    ("dateTime", "2015"),
    ("dateTime", "2015-02-07T13:28:17-05:00"),
    ("dateTime", "2017-01-01T00:00:00.000Z"),
    ("dateTime", "2016-12-31T23:59:60+14:00"),
    ("instant", "2015-02-07T13:28:17.239+08:00"),
    ("time", "23:59:59"),
    ("time", "08:00:00.5"),
    ("base64Binary", "aGVsbG8="),
    ("base64Binary", "aGVs\nbG8="),
    ("xhtml", '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'),
    ("xhtml", '<div xmlns="http://www.w3.org/1999/xhtml"><!-- Snipped for Brevity --></div>'),
    ("xhtml", '<div xmlns="http://www.w3.org/1999/xhtml"><table class="grid"><tr><td '
              'style="color:red">1</td></tr></table><img src="#pic" alt="x"/>'
              '<a href="http://example.org">x</a></div>'),
]

INVALID: list[tuple[str, Any, str]] = [
    ("boolean", "true", "structure"),
    ("boolean", "yes", "structure"),
    ("boolean", 1, "structure"),
    ("integer", 2**31, "value"),
    ("integer", -(2**31) - 1, "value"),
    ("integer", Decimal("1.0"), "structure"),
    ("integer", "12", "structure"),
    ("integer", True, "structure"),
    ("unsignedInt", -1, "value"),
    ("positiveInt", 0, "value"),
    ("positiveInt", 2**31, "value"),
    ("decimal", "1.5", "structure"),
    ("decimal", True, "structure"),
    ("decimal", Decimal("NaN"), "value"),
    ("decimal", float("inf"), "value"),
    ("string", "", "value"),
    ("string", 12, "structure"),
    ("string", "form\x0cfeed", "value"),
    ("string", "x" * (1024 * 1024 + 1), "value"),
    ("markdown", "", "value"),
    ("code", "", "value"),
    ("code", " leading", "value"),
    ("code", "trailing ", "value"),
    ("code", "double  space", "value"),
    ("code", "tab\tthen\t\tdouble", "value"),
    ("code", 1, "structure"),
    ("id", "a_b", "value"),
    ("id", "x" * 65, "value"),
    ("id", "", "value"),
    ("id", "中文", "value"),
    ("uri", "", "value"),
    ("uri", "has space", "value"),
    ("url", "http://x/\ty", "value"),
    ("oid", "1.2.3", "value"),
    ("oid", "urn:oid:3.1", "value"),
    ("uuid", "urn:uuid:C757873D-EC9A-4326-A141-556F43239520", "value"),
    ("uuid", "c757873d-ec9a-4326-a141-556f43239520", "value"),
    ("date", "2023-02-30", "value"),
    ("date", "2023-02-29", "value"),
    ("date", "1900-02-29", "value"),
    ("date", "2024-04-31", "value"),
    ("date", "2024-13", "value"),
    ("date", "0000", "value"),
    ("date", "24-01-01", "value"),
    ("date", "2024-01-01T00:00:00Z", "value"),
    ("date", 2024, "structure"),
    ("dateTime", "2015-02-07T13:28", "value"),
    ("dateTime", "2015-02-07T13:28:17", "value"),  # a time needs a zone
    ("dateTime", "2015-02-07 13:28:17Z", "value"),
    ("dateTime", "2015-02-30T13:28:17Z", "value"),
    ("dateTime", "2015-02-07T24:00:00Z", "value"),
    ("dateTime", "2015-02-07T13:28:17+15:00", "value"),
    ("instant", "2015-02-07", "value"),
    ("instant", "2015-02-07T13:28:17", "value"),
    ("time", "24:00:00", "value"),
    ("time", "08:00", "value"),
    ("base64Binary", "aGVsbG8", "value"),
    ("base64Binary", "aGV sbG8=", "value"),
    ("base64Binary", "aGVs*G8=", "value"),
    ("base64Binary", "", "value"),
    ("xhtml", "", "value"),
    ("xhtml", 1, "structure"),
    # narrative.html: an XHTML div (not text, not another element, not another namespace),
    # well-formed, of basic formatting only (txt-1), and never script.
    ("xhtml", "plain text", "value"),
    ("xhtml", "<div>x</div>", "value"),
    ("xhtml", f'<p xmlns="{XHTML}">x</p>', "value"),
    ("xhtml", f'<div xmlns="{XHTML}"><b>x</div>', "value"),
    ("xhtml", f'<div xmlns="{XHTML}"><script>alert(1)</script></div>', "value"),
    ("xhtml", f'<div xmlns="{XHTML}"><iframe src="x"/></div>', "value"),
    ("xhtml", f'<div xmlns="{XHTML}" onclick="x()">x</div>', "value"),
    ("xhtml", f'<div xmlns="{XHTML}"><a href=" JavaScript:x()">x</a></div>', "value"),
    ("xhtml", f'<!DOCTYPE div [<!ENTITY e "x">]><div xmlns="{XHTML}">&e;</div>', "value"),
]


@pytest.mark.parametrize(("type_name", "value"), VALID)
def test_valid_values(type_name: str, value: Any) -> None:
    assert CHECKS[type_name](value) is None


@pytest.mark.parametrize(("type_name", "value", "code"), INVALID)
def test_invalid_values(type_name: str, value: Any, code: str) -> None:
    found = CHECKS[type_name](value)
    assert found is not None
    assert found[0] == code


def test_every_primitive_type_is_checked() -> None:
    from yilian.fhir.definitions import structure_definitions

    primitives = {
        name for name, sd in structure_definitions().items() if sd["kind"] == "primitive-type"
    }
    assert primitives <= set(CHECKS)


def test_base64_does_not_backtrack_on_long_wrapped_invalid_content() -> None:
    value = ("QUJD\r\n" * 200_000) + "QUJ"
    found = CHECKS["base64Binary"](value)
    assert found is not None


# -- in context: paths and codes of the issues ---------------------------------------------------


def test_boolean_as_a_string(check: Any) -> None:
    issue = check.only({"resourceType": "Patient", "active": "true"}, "Patient.active", "structure")
    assert '"true"' in issue.message
    check.only({"resourceType": "Patient", "active": "yes"}, "Patient.active", "structure")


def test_birth_date_that_does_not_exist(check: Any) -> None:
    issue = check.only(
        {"resourceType": "Patient", "birthDate": "2023-02-30"}, "Patient.birthDate", "value"
    )
    assert "2023-02-30" in issue.message


def test_bad_resource_id(check: Any) -> None:
    check.only({"resourceType": "Patient", "id": "pat_1"}, "Patient.id", "value")
    check.only({"resourceType": "Patient", "id": 1}, "Patient.id", "structure")


def test_element_id_is_a_string(check: Any) -> None:
    check.valid({"resourceType": "Patient", "name": [{"id": "n 1", "text": "Li"}]})
    check.only(
        {"resourceType": "Patient", "name": [{"id": 1, "text": "Li"}]},
        "Patient.name[0].id",
        "structure",
    )


def test_integer_out_of_32_bit_range(check: Any) -> None:
    resource = {"resourceType": "Patient", "multipleBirthInteger": 2**31}
    check.only(resource, "Patient.multipleBirthInteger", "value")


def test_decimal_accepts_decimal_and_int(check: Any) -> None:
    for value in (Decimal("98.6"), 98, Decimal("1E+2")):
        check.valid(
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "temperature"},
                "valueQuantity": {"value": value},
            }
        )


def test_decimal_rejects_a_string(check: Any) -> None:
    resource = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "temperature"},
        "valueQuantity": {"value": "98.6"},
    }
    check.only(resource, "Observation.valueQuantity.value", "structure")


def test_string_rejects_a_number(check: Any) -> None:
    resource = {"resourceType": "Patient", "name": [{"family": 12}]}
    issue = check.only(resource, "Patient.name[0].family", "structure")
    assert "number 12" in issue.message


def test_path_of_an_item_of_a_primitive_array(check: Any) -> None:
    resource = {"resourceType": "Patient", "name": [{"given": ["Wei", ""]}]}
    check.only(resource, "Patient.name[0].given[1]", "value")
