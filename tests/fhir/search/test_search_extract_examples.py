"""Index rows of official examples, written out by hand.

Dates without a time zone are read in the hospital's zone (UTC+08:00), so 1974-12-25 spans
1974-12-24T16:00Z .. 1974-12-25T15:59:59.999999Z.
"""

from __future__ import annotations

from decimal import Decimal

from search_examples import example
from search_rows import (
    LOINC,
    SNOMED,
    UCUM,
    assert_rows,
    ref,
    rows,
    span,
    string,
    token,
    utc,
)

from yilian.fhir.search.dates import DATE_MAX, DATE_MIN
from yilian.fhir.search.extract import TABLES, extract_index_rows

# --- Patient ---------------------------------------------------------------------------------


def test_every_table_is_present_and_rows_have_exactly_the_columns() -> None:
    tables = extract_index_rows(example("Patient-example.json"))
    assert tuple(tables) == TABLES
    columns = {
        "string": {"param", "value_norm", "value_exact"},
        "token": {
            "param", "system", "code", "text", "type_system", "type_code",
            "hash_code", "hash_sys",
        },
        "reference": {"param", "target_type", "target_id", "target_version", "url"},
        "date": {"param", "low", "high"},
        "number": {"param", "value", "low", "high"},
        "quantity": {"param", "system", "code", "unit", "value", "low", "high"},
        "uri": {"param", "uri"},
    }  # fmt: skip
    for resource_file in ("Patient-example.json", "Observation-blood-pressure.json"):
        for table, found in extract_index_rows(example(resource_file)).items():
            for row in found:
                assert set(row._fields) == columns[table] | {"grp"}, (table, row)
                # A composite's component rows also say which element they come from.
                assert (row.grp is not None) == ("$" in row.param), (table, row)


def test_patient_names_index_every_part_separately() -> None:
    patient = example("Patient-example.json")
    assert_rows(
        rows(patient, "string", "name"),
        [
            string("name", "chalmers", "Chalmers"),
            string("name", "peter", "Peter"),
            string("name", "james", "James"),
            string("name", "jim", "Jim"),
            string("name", "windsor", "Windsor"),
        ],
    )
    assert_rows(
        rows(patient, "string", "given"),
        [
            string("given", "peter", "Peter"),
            string("given", "james", "James"),
            string("given", "jim", "Jim"),
        ],
    )
    assert_rows(
        rows(patient, "string", "family"),
        [string("family", "chalmers", "Chalmers"), string("family", "windsor", "Windsor")],
    )


def test_patient_address_parts_and_text() -> None:
    patient = example("Patient-example.json")
    assert_rows(
        rows(patient, "string", "address"),
        [
            string("address", "534 erewhon st", "534 Erewhon St"),
            string("address", "pleasantville", "PleasantVille"),
            string("address", "rainbow", "Rainbow"),
            string("address", "vic", "Vic"),
            string("address", "3999", "3999"),
            string(
                "address",
                "534 erewhon st peasantville, rainbow, vic 3999",
                "534 Erewhon St PeasantVille, Rainbow, Vic  3999",
            ),
        ],
    )
    assert_rows(rows(patient, "string", "address-city"), [
        string("address-city", "pleasantville", "PleasantVille")
    ])  # fmt: skip


def test_patient_tokens() -> None:
    patient = example("Patient-example.json")
    assert_rows(
        rows(patient, "token", "identifier"),
        [
            token(
                "Patient",
                "identifier",
                "urn:oid:1.2.36.146.595.217.0.1",
                "12345",
                type_system="http://terminology.hl7.org/CodeSystem/v2-0203",
                type_code="MR",
            )
        ],
    )
    assert rows(patient, "token", "gender") == [token("Patient", "gender", None, "male")]
    assert rows(patient, "token", "active") == [token("Patient", "active", None, "true")]
    # No deceased[x]: `deceased.exists() and deceased != false` is false.
    assert rows(patient, "token", "deceased") == [token("Patient", "deceased", None, "false")]
    assert rows(patient, "token", "_id") == []  # a column of the resource table
    # ContactPoints match on their value; the one with only `use: home` has none.
    phones = ["(03) 5555 6473", "(03) 3410 5613", "(03) 5555 8834"]
    assert_rows(
        rows(patient, "token", "phone"), [token("Patient", "phone", None, p) for p in phones]
    )
    assert_rows(
        rows(patient, "token", "telecom"), [token("Patient", "telecom", None, p) for p in phones]
    )
    assert rows(patient, "token", "email") == []


def test_patient_birth_date_is_a_local_day() -> None:
    patient = example("Patient-example.json")  # birthDate 1974-12-25 (with an extension)
    assert rows(patient, "date", "birthdate") == [
        {
            "param": "birthdate",
            "low": utc(1974, 12, 24, 16, 0, 0),
            "high": utc(1974, 12, 25, 15, 59, 59, 999999),
        }
    ]
    assert rows(patient, "reference", "organization") == [
        ref("organization", "Organization", "1")
    ]


def test_deceased_date_time_makes_deceased_true() -> None:
    patient = {
        "resourceType": "Patient",
        "id": "p",
        "deceasedDateTime": "2015-02-14T13:42:00+10:00",
    }
    assert rows(patient, "token", "deceased") == [token("Patient", "deceased", None, "true")]
    assert rows(patient, "date", "death-date") == [
        {
            "param": "death-date",
            "low": utc(2015, 2, 14, 3, 42, 0),
            "high": utc(2015, 2, 14, 3, 42, 0, 999999),
        }
    ]
    deceased_false = {"resourceType": "Patient", "id": "p", "deceasedBoolean": False}
    assert rows(deceased_false, "token", "deceased") == [
        token("Patient", "deceased", None, "false")
    ]


def test_chinese_names_survive_normalisation() -> None:
    patient = {
        "resourceType": "Patient",
        "id": "zh",
        "name": [
            {"use": "official", "text": "张三", "family": "张", "given": ["三"]},
            {"family": "王", "given": ["小明"], "text": "王小明"},
            {"family": "ＷＡＮＧ", "given": ["Xiǎomíng"]},  # full-width Latin, pinyin tones
        ],
        "address": [{"city": "上海市", "district": "浦东新区", "line": ["世纪大道 100 号"]}],
    }
    assert_rows(
        rows(patient, "string", "name"),
        [
            string("name", "张三", "张三"),
            string("name", "张", "张"),
            string("name", "三", "三"),
            string("name", "王", "王"),
            string("name", "小明", "小明"),
            string("name", "王小明", "王小明"),
            string("name", "wang", "ＷＡＮＧ"),
            string("name", "xiaoming", "Xiǎomíng"),
        ],
    )
    assert_rows(
        rows(patient, "string", "address"),
        [
            string("address", "上海市", "上海市"),
            string("address", "浦东新区", "浦东新区"),
            string("address", "世纪大道 100 号", "世纪大道 100 号"),
        ],
    )
    assert rows(patient, "string", "address-city") == [string("address-city", "上海市", "上海市")]


# --- Observation -----------------------------------------------------------------------------


def test_observation_example_body_weight() -> None:
    observation = example("Observation-example.json")
    codings = [
        (LOINC, "29463-7", "body weight"),
        (LOINC, "3141-9", "body weight measured"),
        (SNOMED, "27113001", "body weight"),
        ("http://acme.org/devices/clinical-codes", "body-weight", "body weight"),
    ]
    assert_rows(
        rows(observation, "token", "code"),
        [token("Observation", "code", s, c, t) for s, c, t in codings],
    )
    assert rows(observation, "token", "category") == [
        token(
            "Observation",
            "category",
            "http://terminology.hl7.org/CodeSystem/observation-category",
            "vital-signs",
            "vital signs",
        )
    ]
    # effectiveDateTime 2016-03-28: a day in the hospital's zone.
    assert rows(observation, "date", "date") == [
        span("date", utc(2016, 3, 27, 16, 0, 0), utc(2016, 3, 28, 15, 59, 59, 999999))
    ]
    # 185 [lb_av]: written without decimals, so it stands for [184.5, 185.5).
    assert rows(observation, "quantity", "value-quantity") == [
        {
            "param": "value-quantity",
            "system": UCUM,
            "code": "[lb_av]",
            "unit": "lbs",
            "value": Decimal("185"),
            "low": Decimal("184.5"),
            "high": Decimal("185.5"),
        }
    ]
    assert rows(observation, "reference", "patient") == [ref("patient", "Patient", "example")]
    assert rows(observation, "reference", "subject") == [ref("subject", "Patient", "example")]
    # code-value-quantity and combo-code-value-quantity are searched on the rows of `code`,
    # `value-quantity` and component-code-value-quantity: no rows of their own.
    indexed = extract_index_rows(observation)
    assert not [row for table in indexed.values() for row in table
                if row.param.startswith(("code-value-", "combo-"))]


def test_observation_f001_open_period_and_decimal_precision() -> None:
    observation = example("Observation-f001.json")
    # effectivePeriod.start 2013-04-02T09:30:10+01:00 to the second, no end: ongoing.
    assert rows(observation, "date", "date") == [
        {"param": "date", "low": utc(2013, 4, 2, 8, 30, 10), "high": DATE_MAX}
    ]
    assert utc(9999, 12, 31, 23, 59, 59, 999999) == DATE_MAX
    assert rows(observation, "quantity", "value-quantity") == [
        {
            "param": "value-quantity",
            "system": UCUM,
            "code": "mmol/L",
            "unit": "mmol/l",
            "value": Decimal("6.3"),
            "low": Decimal("6.25"),
            "high": Decimal("6.35"),
        }
    ]
    assert rows(observation, "token", "identifier") == [
        token(
            "Observation",
            "identifier",
            "http://www.bmc.nl/zorgportal/identifiers/observations",
            "6323",
        )
    ]
    assert rows(observation, "reference", "performer") == [
        ref("performer", "Practitioner", "f005")
    ]


def test_blood_pressure_components_pair_code_and_value_of_the_same_component() -> None:
    observation = example("Observation-blood-pressure.json")
    param = "component-code-value-quantity"
    codes = [(row["system"], row["code"], row["grp"])
             for row in rows(observation, "token", f"{param}$0")]
    assert codes == [
        (LOINC, "8480-6", 0), (SNOMED, "271649006", 0),
        ("http://acme.org/devices/clinical-codes", "bp-s", 0),
        (LOINC, "8462-4", 1),
    ]  # fmt: skip
    values = [(row["value"], row["code"], row["grp"])
              for row in rows(observation, "quantity", f"{param}$1")]
    # The systolic value shares the systolic codes' element; never the diastolic one's.
    assert values == [(Decimal("107"), "mm[Hg]", 0), (Decimal("60"), "mm[Hg]", 1)]


def test_codeable_concept_text_and_identifier_only_references() -> None:
    observation = example("Observation-blood-pressure.json")
    # The concept's text differs from the coding's display: both are searchable with :text.
    assert_rows(
        rows(observation, "token", "code"),
        [
            token(
                "Observation",
                "code",
                LOINC,
                "85354-9",
                "blood pressure panel with all children optional",
            ),
            token("Observation", "code", None, None, "blood pressure systolic & diastolic"),
        ],
    )
    # basedOn has only an identifier: a logical reference, not a row.
    assert rows(observation, "reference", "based-on") == []
    assert rows(observation, "uri", "_profile") == [
        {"param": "_profile", "uri": "http://hl7.org/fhir/StructureDefinition/vitalsigns"}
    ]


# --- Encounter, MedicationRequest, CarePlan ----------------------------------------------------


def test_encounter_example() -> None:
    encounter = example("Encounter-example.json")
    assert rows(encounter, "token", "class") == [
        token(
            "Encounter",
            "class",
            "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "IMP",
            "inpatient encounter",
        )
    ]
    assert rows(encounter, "token", "status") == [token("Encounter", "status", None, "in-progress")]
    assert rows(encounter, "reference", "patient") == [ref("patient", "Patient", "example")]


def test_encounter_f001_length_and_participant() -> None:
    encounter = example("Encounter-f001.json")
    assert rows(encounter, "quantity", "length") == [
        {
            "param": "length",
            "system": UCUM,
            "code": "min",
            "unit": "min",
            "value": Decimal("140"),
            "low": Decimal("139.5"),
            "high": Decimal("140.5"),
        }
    ]
    assert rows(encounter, "reference", "practitioner") == [
        ref("practitioner", "Practitioner", "f002")
    ]
    assert rows(encounter, "reference", "service-provider") == [
        ref("service-provider", "Organization", "f001")
    ]


def test_medication_request_skips_contained_references() -> None:
    request = example("MedicationRequest-medrx0302.json")
    assert rows(request, "reference", "medication") == []  # "#med0320" is contained
    assert rows(request, "reference", "patient") == [ref("patient", "Patient", "pat1")]
    assert rows(request, "date", "authoredon") == [
        {
            "param": "authoredon",
            "low": utc(2015, 1, 14, 16, 0, 0),
            "high": utc(2015, 1, 15, 15, 59, 59, 999999),
        }
    ]
    assert rows(request, "token", "intent") == [token("MedicationRequest", "intent", None, "order")]


def test_period_without_start_and_timing_bounds() -> None:
    plan = example("CarePlan-example.json")  # period: {"end": "2017-06-01"}
    assert rows(plan, "date", "date") == [
        {"param": "date", "low": DATE_MIN, "high": utc(2017, 6, 1, 15, 59, 59, 999999)}
    ]
    pregnancy = example("CarePlan-preg.json")  # scheduledTiming.repeat.boundsPeriod
    assert_rows(
        rows(pregnancy, "date", "activity-date"),
        [
            {
                "param": "activity-date",
                "low": utc(2013, 2, 13, 16, 0, 0),
                "high": utc(2013, 2, 28, 15, 59, 59, 999999),
            },
            {
                "param": "activity-date",
                "low": utc(2013, 2, 28, 16, 0, 0),
                "high": utc(2013, 3, 14, 15, 59, 59, 999999),
            },
            {
                "param": "activity-date",
                "low": utc(2013, 8, 31, 16, 0, 0),
                "high": utc(2013, 9, 14, 15, 59, 59, 999999),
            },
        ],
    )


def test_timing_events_and_bounds() -> None:
    request = {
        "resourceType": "ServiceRequest",
        "id": "t",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/p"},
        "occurrenceTiming": {
            "event": ["2024-05-01T08:00:00+08:00", "2024-05"],
            "repeat": {"boundsPeriod": {"start": "2024-06-01T00:00:00Z"}, "frequency": 1},
        },
    }
    assert_rows(
        rows(request, "date", "occurrence"),
        [
            span("occurrence", utc(2024, 5, 1, 0, 0, 0), utc(2024, 5, 1, 0, 0, 0, 999999)),
            span("occurrence", utc(2024, 4, 30, 16, 0, 0), utc(2024, 5, 31, 15, 59, 59, 999999)),
            span("occurrence", utc(2024, 6, 1, 0, 0, 0), DATE_MAX),
        ],
    )  # fmt: skip
    # MedicationRequest's date is only the dosage timing's events.
    medication = {
        "resourceType": "MedicationRequest",
        "id": "m",
        "dosageInstruction": [{"timing": {"event": ["2024-05-02"]}}],
    }
    assert rows(medication, "date", "date") == [
        span("date", utc(2024, 5, 1, 16, 0, 0), utc(2024, 5, 2, 15, 59, 59, 999999))
    ]
