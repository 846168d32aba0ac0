"""Index rows for single values: references, identifiers, quantities, numbers, edge cases."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from search_rows import assert_rows, of_element, ref, rows, string, token

from yilian.fhir.search.composite import layout
from yilian.fhir.search.extract import extract_index_rows
from yilian.fhir.search.normalize import NUMBER_MAX, NUMBER_MIN, hash64, precision_range
from yilian.fhir.search.registry import get_registry
from yilian.kit import jsonfmt
from yilian.kit.hashing import hash64 as kit_hash64


def observation(**fields: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": "o", "status": "final", **fields}


# --- references ------------------------------------------------------------------------------


def test_reference_forms() -> None:
    found = rows(
        observation(
            performer=[
                {"reference": "Practitioner/p1"},
                {"reference": "Practitioner/p2/_history/3"},
                {"reference": "http://other.org/fhir/Organization/o1"},
                {"reference": "http://other.org/fhir/Organization/o2/_history/7"},
                {"reference": "urn:uuid:53fefa32-fcbb-4ff8-8a92-55ee120877b7"},
                {"reference": "Practitioner?identifier=http://x|1"},  # conditional, unresolved
                {"reference": "#contained-one"},  # local: not indexed
                {"identifier": {"system": "http://x", "value": "1"}},  # logical: not indexed
                {"display": "Someone"},
            ]
        ),
        "reference",
        "performer",
    )
    assert_rows(
        found,
        [
            ref("performer", "Practitioner", "p1"),
            {**ref("performer", "Practitioner", "p2"), "target_version": "3"},
            # Another server's (no local base given): the URL alone, no local Type/id.
            ref("performer", None, None, "http://other.org/fhir/Organization/o1"),
            ref("performer", None, None, "http://other.org/fhir/Organization/o2/_history/7"),
            ref("performer", None, None, "urn:uuid:53fefa32-fcbb-4ff8-8a92-55ee120877b7"),
            ref("performer", None, None, "Practitioner?identifier=http://x|1"),
        ],
    )  # fmt: skip


def test_absolute_references_under_the_local_base_are_local() -> None:
    """Under this server's base, an absolute reference's row is a relative one's (search
    §3.1.1.4.10); under another, the URL alone."""
    resource = observation(performer=[
        {"reference": "http://other.org/fhir/Organization/o1"},
        {"reference": "http://other.org/fhir/Organization/o2/_history/7"},
        {"reference": "http://other.org/fhirx/Organization/o3"},
    ])
    assert_rows(rows(resource, "reference", "performer", local_base="http://other.org/fhir"), [
        ref("performer", "Organization", "o1"),
        {**ref("performer", "Organization", "o2"), "target_version": "7"},
        ref("performer", None, None, "http://other.org/fhirx/Organization/o3"),
    ])


def test_resolve_is_decided_by_the_reference_type() -> None:
    resource = observation(
        subject={"reference": "https://example.org/fhir/Patient/abc"},
    )
    assert rows(resource, "reference", "patient") == [
        ref("patient", None, None, "https://example.org/fhir/Patient/abc")
    ]
    assert rows(resource, "reference", "patient", local_base="https://example.org/fhir") == [
        ref("patient", "Patient", "abc")
    ]
    group = observation(subject={"reference": "Group/g"})
    assert rows(group, "reference", "patient") == []
    assert rows(group, "reference", "subject") == [ref("subject", "Group", "g")]


def test_canonical_references_are_urls() -> None:
    response = {
        "resourceType": "QuestionnaireResponse",
        "id": "r",
        "status": "completed",
        "questionnaire": "http://example.org/Questionnaire/phq-9|1.0",
    }
    assert rows(response, "reference", "questionnaire") == [
        ref("questionnaire", None, None, "http://example.org/Questionnaire/phq-9|1.0")
    ]


def test_document_bundle_composition_is_its_first_entry() -> None:
    bundle = {
        "resourceType": "Bundle",
        "id": "b",
        "type": "document",
        "entry": [
            {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Composition", "id": "c1"}},
            {"resource": {"resourceType": "Patient", "id": "p1"}},
        ],
    }
    assert rows(bundle, "reference", "composition") == [ref("composition", "Composition", "c1")]
    assert rows(bundle, "reference", "message") == []
    transaction = {**bundle, "type": "transaction", "entry": bundle["entry"][1:]}
    assert rows(transaction, "reference", "composition") == []


# --- tokens ----------------------------------------------------------------------------------


def test_identifier_type_codings_support_of_type() -> None:
    patient = {
        "resourceType": "Patient",
        "id": "p",
        "identifier": [
            {
                "type": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"},
                        {"system": "urn:yilian:id-type", "code": "住院号"},
                    ],
                    "text": "Medical Record Number",
                },
                "system": "urn:yilian:mrn",
                "value": "MR-0001",
            },
            {"system": "urn:yilian:card"},  # a system alone still answers `identifier=system|`
            {"value": "NO-SYSTEM"},
            {"type": {"text": "empty"}},  # neither system nor value: nothing to find
        ],
    }
    text = "medical record number"
    assert_rows(
        rows(patient, "token", "identifier"),
        [
            token("Patient", "identifier", "urn:yilian:mrn", "MR-0001", text,
                  "http://terminology.hl7.org/CodeSystem/v2-0203", "MR"),
            token("Patient", "identifier", "urn:yilian:mrn", "MR-0001", text,
                  "urn:yilian:id-type", "住院号"),
            token("Patient", "identifier", "urn:yilian:card", None),
            token("Patient", "identifier", None, "NO-SYSTEM"),
        ],
    )  # fmt: skip


def test_codings_without_system_booleans_and_codes() -> None:
    patient = {
        "resourceType": "Patient",
        "id": "p",
        "active": False,
        "gender": "female",
        "communication": [
            {
                "language": {
                    "coding": [{"code": "zh-CN", "display": "中文（中国）"}],
                    "text": "普通话",
                }
            }
        ],
    }
    assert rows(patient, "token", "active") == [token("Patient", "active", None, "false")]
    assert rows(patient, "token", "gender") == [token("Patient", "gender", None, "female")]
    assert_rows(
        rows(patient, "token", "language"),
        [
            # NFKD folds the full-width parentheses; the Chinese is unchanged.
            token("Patient", "language", None, "zh-CN", "中文(中国)"),
            token("Patient", "language", None, None, "普通话"),
        ],
    )


def test_contact_points_index_their_value() -> None:
    patient = {
        "resourceType": "Patient",
        "id": "p",
        "telecom": [
            {"system": "phone", "value": "+86 21 5555 0000", "use": "work"},
            {"system": "email", "value": "zhang.san@example.cn"},
        ],
    }
    assert rows(patient, "token", "phone") == [token("Patient", "phone", None, "+86 21 5555 0000")]
    assert rows(patient, "token", "email") == [
        token("Patient", "email", None, "zhang.san@example.cn")
    ]
    assert len(rows(patient, "token", "telecom")) == 2


def test_long_codes_are_cut_to_the_column_but_hashed_whole() -> None:
    code = "x" * 500
    found = rows(observation(code={"coding": [{"system": "urn:s", "code": code}]}), "token", "code")
    assert found[0]["code"] == "x" * 400
    assert found[0]["hash_code"] == kit_hash64("Observation", "code", code)


def test_hash64_is_the_kits() -> None:
    for parts in [("a",), ("Patient", "gender", None), ("Patient", "gender", ""), ()]:
        assert hash64(*parts) == kit_hash64(*parts)
    assert hash64("Patient", "gender", None) != hash64("Patient", "gender", "")
    assert -(2**63) <= hash64("x") < 2**63


# --- extension-only values ---------------------------------------------------------------------


def test_primitives_with_only_extensions_are_skipped() -> None:
    absent = {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
                             "valueCode": "unknown"}]}  # fmt: skip
    patient = {
        "resourceType": "Patient",
        "id": "p",
        "_birthDate": absent,
        "name": [{"given": [None, "Bo"], "_given": [absent, None], "_family": absent}],
        "telecom": [{"system": "phone", "_value": absent}],
    }
    tables = extract_index_rows(patient)
    assert [r for r in tables["date"] if r.param == "birthdate"] == []
    assert rows(patient, "string", "name") == [string("name", "bo", "Bo")]
    assert rows(patient, "token", "phone") == []


# --- quantities and numbers ------------------------------------------------------------------


def test_precision_ranges() -> None:
    assert precision_range(Decimal("100")) == (Decimal("99.5"), Decimal("100.5"))
    assert precision_range(Decimal("1E+2")) == (Decimal("50"), Decimal("150"))
    assert precision_range(Decimal("5.40")) == (Decimal("5.395"), Decimal("5.405"))
    assert precision_range(Decimal("-0.02")) == (Decimal("-0.025"), Decimal("-0.015"))


def test_decimals_keep_their_written_precision_and_floats_their_shortest_form() -> None:
    parsed = jsonfmt.loads(b'{"resourceType":"Observation","id":"o","status":"final",'
                           b'"valueQuantity":{"value":5.40,"unit":"g"}}')  # fmt: skip
    assert rows(parsed, "quantity", "value-quantity")[0]["low"] == Decimal("5.395")
    as_float = observation(valueQuantity={"value": 5.4, "unit": "g"})
    assert rows(as_float, "quantity", "value-quantity")[0]["low"] == Decimal("5.35")


def test_quantity_comparators_open_the_range() -> None:
    found = rows(
        observation(valueQuantity={"value": 5, "comparator": "<", "system": "urn:u", "code": "g"}),
        "quantity",
        "value-quantity",
    )
    assert found == [
        {"param": "value-quantity", "system": "urn:u", "code": "g", "unit": None,
         "value": Decimal("5"), "low": NUMBER_MIN, "high": Decimal("5.5")}
    ]  # fmt: skip


def test_range_and_age() -> None:
    condition = {
        "resourceType": "Condition",
        "id": "c",
        "subject": {"reference": "Patient/p"},
        "onsetAge": {"value": 52, "unit": "岁", "system": "http://unitsofmeasure.org", "code": "a"},
        "abatementRange": {"low": {"value": 60, "unit": "a"}},
    }
    assert rows(condition, "quantity", "onset-age") == [
        {"param": "onset-age", "system": "http://unitsofmeasure.org", "code": "a", "unit": "岁",
         "value": Decimal("52"), "low": Decimal("51.5"), "high": Decimal("52.5")}
    ]  # fmt: skip
    assert rows(condition, "quantity", "abatement-age") == [
        {"param": "abatement-age", "system": None, "code": None, "unit": "a",
         "value": Decimal("60"), "low": Decimal("60"), "high": NUMBER_MAX}
    ]  # fmt: skip


def test_money() -> None:
    item = {
        "resourceType": "ChargeItem",
        "id": "ci",
        "status": "billable",
        "code": {"text": "挂号费"},
        "subject": {"reference": "Patient/p"},
        "priceOverride": {"value": 25.00, "currency": "CNY"},
    }
    found = rows(jsonfmt.loads(jsonfmt.dumps(item)), "quantity", "price-override")
    assert found == [
        {"param": "price-override", "system": "urn:iso:std:iso:4217", "code": "CNY", "unit": None,
         "value": Decimal("25.0"), "low": Decimal("24.95"), "high": Decimal("25.05")}
    ]  # fmt: skip


def test_numbers() -> None:
    assessment = {
        "resourceType": "RiskAssessment",
        "id": "r",
        "status": "final",
        "subject": {"reference": "Patient/p"},
        "prediction": [
            {"probabilityDecimal": Decimal("0.02")},
            {"probabilityRange": {"low": {"value": 1}, "high": {"value": 3}}},
        ],
    }
    assert_rows(
        rows(assessment, "number", "probability"),
        [
            {"param": "probability", "value": Decimal("0.02"),
             "low": Decimal("0.015"), "high": Decimal("0.025")},
            {"param": "probability", "value": Decimal("1"),
             "low": Decimal("1"), "high": Decimal("3")},
        ],
    )  # fmt: skip


# --- composites ------------------------------------------------------------------------------


def _branches(res_type: str, code: str) -> list[tuple[tuple[str, ...], bool]]:
    param = get_registry().get(res_type, code)
    assert param is not None
    found = layout(param)
    assert found is not None
    return [(tuple(part.code for part in branch.parts), branch.grouped)
            for branch in found.branches]


def test_composites_are_searched_on_rows_written_anyway_where_they_can() -> None:
    # The element is the Observation itself and the components read what `code` and
    # `value-quantity` index (its valueSampledData makes no quantity row): no rows of its own.
    assert _branches("Observation", "code-value-quantity") == [
        (("code", "value-quantity"), False)]
    assert _branches("Observation", "code-value-date") == [(("code", "value-date"), False)]
    # value-string also indexes valueCodeableConcept.text, which the component does not.
    assert _branches("Observation", "code-value-string") == [
        (("code-value-string$0", "code-value-string$1"), True)]
    component = ("component-code-value-quantity$0", "component-code-value-quantity$1")
    assert _branches("Observation", "component-code-value-quantity") == [(component, True)]
    # Observation | Observation.component: the two composites above, one branch each.
    assert _branches("Observation", "combo-code-value-quantity") == [
        (("code", "value-quantity"), False), (component, True)]
    resource = observation(
        code={"coding": [{"code": "x"}]},
        valueQuantity={"value": Decimal("120.0"), "system": "urn:u", "code": "mm[Hg]"},
        component=[{"code": {"coding": [{"code": "y"}]}, "valueQuantity": {"value": 1}}],
    )
    written = {row.param for table in extract_index_rows(resource).values() for row in table}
    assert {"component-code-value-quantity$0", "component-code-value-quantity$1"} <= written
    assert not {code for code in written if code.startswith(("code-value-", "combo-"))}


def test_a_composite_over_the_resource_with_its_own_rows() -> None:
    text = observation(code={"coding": [{"system": "s", "code": "c"}]}, valueString="Ａ  Bé")
    assert rows(text, "token", "code-value-string$0") == of_element(
        0, token("Observation", "code-value-string$0", "s", "c"))
    assert rows(text, "string", "code-value-string$1") == of_element(
        0, string("code-value-string$1", "a be", "Ａ  Bé"))
    # Without a value there is no element to pair the code with.
    assert rows(observation(code={"coding": [{"code": "c"}]}), "token",
                "code-value-string$0") == []


def test_group_characteristic_value_with_a_boolean() -> None:
    group = {
        "resourceType": "Group",
        "id": "g",
        "type": "person",
        "actual": True,
        "characteristic": [
            {"code": {"coding": [{"system": "s", "code": "smoker"}]}, "valueBoolean": True,
             "exclude": False},
            {"code": {"coding": [{"system": "s", "code": "adult"}]}, "valueBoolean": False,
             "exclude": False},
        ],
    }  # fmt: skip
    param = "characteristic-value"
    assert_rows(rows(group, "token", f"{param}$0"),
                of_element(0, token("Group", f"{param}$0", "s", "smoker"))
                + of_element(1, token("Group", f"{param}$0", "s", "adult")))
    assert_rows(rows(group, "token", f"{param}$1"),
                of_element(0, token("Group", f"{param}$1", None, "true"))
                + of_element(1, token("Group", f"{param}$1", None, "false")))


def test_molecular_sequence_composite_reads_the_resource_root() -> None:
    sequence = {
        "resourceType": "MolecularSequence",
        "id": "m",
        "coordinateSystem": 0,
        "referenceSeq": {"chromosome": {"coding": [{"system": "c", "code": "1"}]}},
        "variant": [{"start": 100, "end": 101}, {"start": 200, "end": 230}],
    }
    param = "chromosome-variant-coordinate"
    # %resource.referenceSeq.chromosome, paired with each variant.
    assert_rows(rows(sequence, "token", f"{param}$0"),
                of_element(0, token("MolecularSequence", f"{param}$0", "c", "1"))
                + of_element(1, token("MolecularSequence", f"{param}$0", "c", "1")))
    assert [(row["value"], row["grp"]) for row in rows(sequence, "number", f"{param}$1")] == [
        (Decimal(100), 0), (Decimal(200), 1)]
    assert [(row["value"], row["grp"]) for row in rows(sequence, "number", f"{param}$2")] == [
        (Decimal(101), 0), (Decimal(230), 1)]


def test_document_reference_relationship() -> None:
    document = {
        "resourceType": "DocumentReference",
        "id": "d",
        "status": "current",
        "content": [{"attachment": {"url": "http://x"}}],
        "relatesTo": [{"code": "replaces", "target": {"reference": "DocumentReference/old"}}],
    }
    assert rows(document, "reference", "relationship$0") == of_element(
        0, ref("relationship$0", "DocumentReference", "old"))
    assert rows(document, "token", "relationship$1") == of_element(
        0, token("DocumentReference", "relationship$1", None, "replaces"))


def test_last_updated_and_tags() -> None:
    resource = observation(
        meta={
            "lastUpdated": "2026-11-23T12:00:00.123Z",
            "tag": [{"system": "urn:yilian:site", "code": "东院"}],
            "source": "urn:yilian:his",
        }
    )
    assert rows(resource, "date", "_lastUpdated") == []  # a column of the resource table
    assert rows(resource, "token", "_tag") == [
        token("Observation", "_tag", "urn:yilian:site", "东院")
    ]
    assert rows(resource, "uri", "_source") == [{"param": "_source", "uri": "urn:yilian:his"}]


def test_unknown_or_missing_resource_types_have_no_rows() -> None:
    assert all(not found for found in extract_index_rows({"resourceType": "Nope"}).values())
    assert all(not found for found in extract_index_rows({}).values())


def test_numbers_beyond_the_columns_are_clamped() -> None:
    huge = observation(valueQuantity={"value": Decimal("6.02E+40"), "unit": "1/mol"})
    (row,) = rows(huge, "quantity", "value-quantity")
    assert row["value"] == row["low"] == row["high"] == NUMBER_MAX


def test_numbers_beyond_decimal_arithmetic_are_clamped() -> None:
    """Exponents past the default decimal context's ±999999 once failed the write (Overflow
    on the precision range; PostgreSQL refuses more than 16383 decimal places)."""
    for written, expected in (("1e99999999999", NUMBER_MAX), ("-1e99999999999", NUMBER_MIN)):
        found = observation(valueQuantity={"value": Decimal(written), "unit": "mg"})
        (row,) = rows(found, "quantity", "value-quantity")
        assert row["value"] == row["low"] == row["high"] == expected
    tiny = observation(valueQuantity={"value": Decimal("1e-99999999999"), "unit": "mg"})
    (row,) = rows(tiny, "quantity", "value-quantity")
    # Ten decimal places, the range rounded outwards as a search's is.
    assert (row["value"], row["low"], row["high"]) == (0, 0, Decimal("1e-10"))
    assert all(value.as_tuple().exponent == -10 for value in (row["value"], row["high"]))
