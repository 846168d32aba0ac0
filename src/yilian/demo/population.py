"""The demo's residents as FHIR Patients (with their insurance as Coverage)."""

from __future__ import annotations

from typing import Any

from yilian.demo.people import Person
from yilian.domains.network.codes import INSURANCE_CARD, INSURANCE_TYPE, RESIDENT_ID, mrn_system

JsonObject = dict[str, Any]
_IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"


def patient_resource(person: Person, res_id: str, *, home_organization: str,
                     mrn: str) -> JsonObject:
    """A resident registered at `home_organization` (the hospital or community centre that
    keeps their record), with their resident ID, insurance card and that place's MRN."""
    identifiers: list[JsonObject] = [
        {"use": "official",
         "type": {"coding": [{"system": _IDENTIFIER_TYPE, "code": "NI",
                              "display": "National unique individual identifier"}],
                  "text": "居民身份证"},
         "system": RESIDENT_ID, "value": person.resident_id},
        {"use": "usual",
         "type": {"coding": [{"system": _IDENTIFIER_TYPE, "code": "MR",
                              "display": "Medical record number"}], "text": "病案号"},
         "system": mrn_system(home_organization), "value": mrn},
    ]
    if person.insurance is not None:
        identifiers.append({
            "use": "secondary",
            "type": {"coding": [{"system": _IDENTIFIER_TYPE, "code": "SN",
                                 "display": "Subscriber Number"}], "text": "医保卡号"},
            "system": INSURANCE_CARD, "value": person.insurance.card_number})
    return {
        "resourceType": "Patient", "id": res_id, "active": True,
        "identifier": identifiers,
        "name": [{"use": "official", "text": person.family + person.given,
                  "family": person.family, "given": [person.given]},
                 {"use": "usual", "family": person.family_pinyin,
                  "given": [person.given_pinyin]}],
        "telecom": [{"system": "phone", "value": person.phone, "use": "mobile"}],
        "gender": person.gender,
        "birthDate": person.birth_date.isoformat(),
        "address": [{"use": "home", "text": f"{person.province}{person.city}{person.district}"
                                            f"{person.line}",
                     "line": [person.line], "city": person.city, "district": person.district,
                     "state": person.province, "country": "CN"}],
        "managingOrganization": {"reference": f"Organization/{home_organization}"},
    }


def coverage_resource(person: Person, patient_id: str) -> JsonObject | None:
    """The patient's basic medical insurance (None for a self-paying patient)."""
    if person.insurance is None:
        return None
    plan = person.insurance
    return {
        "resourceType": "Coverage", "id": f"cov-{patient_id}", "status": "active",
        "type": {"coding": [{"system": INSURANCE_TYPE, "code": plan.insutype,
                             "display": plan.display_en}], "text": plan.display_zh},
        "subscriberId": plan.card_number,
        "beneficiary": {"reference": f"Patient/{patient_id}"},
        "relationship": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/subscriber-relationship",
            "code": "self"}]},
        "payor": [{"display": f"{person.city}医疗保障局"}],
    }
