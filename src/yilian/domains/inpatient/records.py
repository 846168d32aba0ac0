"""The FHIR shape of an inpatient stay, as pure functions of JSON: what an admission, a
transfer and a discharge make of an Encounter, a diagnosis' Condition, a bed's Location.

The service (live operations) and the demo (a year of past stays) build through the same
functions, so a seeded stay looks exactly like one made through $admit.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from yilian.domains.inpatient.codes import (
    ACT_CODE,
    ADMIT_SOURCE,
    BED_RESERVATION,
    CONDITION_CATEGORY,
    CONDITION_CLINICAL,
    CONDITION_VERIFICATION,
    DIAGNOSIS_ROLE,
    DISCHARGE_DISPOSITION,
    DISPOSITION_YILIAN,
    ENCOUNTER_DEPARTMENT,
    EXPECTED_DISCHARGE,
    PARTICIPATION_TYPE,
    TRANSFER_REASON,
    AdmitSource,
    BedStatus,
    DiagnosisRole,
    Disposition,
)
from yilian.domains.inpatient.repository import Place
from yilian.domains.network.codes import (
    PhysicalType,
    coding,
    inpatient_number_system,
    physical_type,
)
from yilian.kit.clock import to_instant

JsonObject = dict[str, Any]


def ref(res_type: str, res_id: str, display: str | None = None) -> JsonObject:
    found: JsonObject = {"reference": f"{res_type}/{res_id}"}
    if display:
        found["display"] = display
    return found


def patient_name(patient: JsonObject) -> str | None:
    """A person's name as written in Chinese: the text, else family then given, no space."""
    for name in patient.get("name", []):
        if name.get("text"):
            return str(name["text"])
        family = name.get("family", "")
        given = "".join(name.get("given", []))
        if family or given:
            return f"{family}{given}"
    return None


def admission_encounter(
    encounter_id: str, *, number: str, place: Place, patient: JsonObject, practitioner_id: str,
    department: JsonObject, conditions: Sequence[str], at: datetime,
    admit_source: AdmitSource | None, expected_discharge: date | None,
) -> JsonObject:
    """The in-progress inpatient Encounter an admission makes (`number`: 住院号)."""
    extensions = [department_extension(department)]
    if expected_discharge is not None:
        extensions.append({"url": EXPECTED_DISCHARGE, "valueDate": expected_discharge.isoformat()})
    encounter: JsonObject = {
        "resourceType": "Encounter",
        "id": encounter_id,
        "extension": extensions,
        "identifier": [{"use": "official", "system": inpatient_number_system(place.hospital_id),
                        "value": number}],
        "status": "in-progress",
        "class": coding(ACT_CODE, "IMP", "inpatient encounter"),
        "subject": ref("Patient", str(patient["id"]), patient_name(patient)),
        "participant": [{
            "type": [{"coding": [coding(PARTICIPATION_TYPE, "ATND", "attender")]}],
            "individual": ref("Practitioner", practitioner_id),
        }],
        "period": {"start": to_instant(at)},
        "diagnosis": [encounter_diagnosis(c, DiagnosisRole.ADMISSION, rank)
                      for rank, c in enumerate(conditions, start=1)],
        "location": location_entries(place, at),
        "serviceProvider": ref("Organization", place.hospital_id),
    }
    if department.get("specialty"):
        encounter["serviceType"] = department["specialty"][0]
    if admit_source is not None:
        code, display = admit_source.hl7
        encounter["hospitalization"] = {"admitSource": {
            "coding": [coding(ADMIT_SOURCE, code, display)], "text": admit_source.zh}}
    return encounter


def transferred(encounter: JsonObject, place: Place, at: datetime, *, reason: str | None,
                department: JsonObject | None) -> JsonObject:
    """The Encounter after a move to `place` (and to `department`, between departments)."""
    changed = {k: v for k, v in encounter.items() if k != "meta"}
    changed["location"] = [*closed_locations(encounter, at),
                           *location_entries(place, at, reason=reason)]
    if department is not None:
        changed["extension"] = [department_extension(department), *(
            e for e in encounter.get("extension", []) if e.get("url") != ENCOUNTER_DEPARTMENT)]
        if department.get("specialty"):
            changed["serviceType"] = department["specialty"][0]
    return changed


def discharged(encounter: JsonObject, at: datetime, disposition: Disposition,
               conditions: Sequence[str]) -> JsonObject:
    """The finished Encounter: its end, disposition and discharge diagnoses."""
    changed = {k: v for k, v in encounter.items() if k != "meta"}
    changed["status"] = "finished"
    changed["period"] = {**encounter.get("period", {}), "end": to_instant(at)}
    changed["location"] = closed_locations(encounter, at)
    changed["diagnosis"] = [*encounter.get("diagnosis", []),
                            *(encounter_diagnosis(c, DiagnosisRole.DISCHARGE, rank)
                              for rank, c in enumerate(conditions, start=1))]
    hl7_code, hl7_display = disposition.hl7
    changed["hospitalization"] = {
        **encounter.get("hospitalization", {}),
        "dischargeDisposition": {
            "coding": [coding(DISPOSITION_YILIAN, disposition.value, disposition.zh),
                       coding(DISCHARGE_DISPOSITION, hl7_code, hl7_display)],
            "text": disposition.zh}}
    return changed


def department_extension(department: JsonObject) -> JsonObject:
    return {"url": ENCOUNTER_DEPARTMENT,
            "valueReference": ref("HealthcareService", str(department["id"]),
                                  department.get("name"))}


def location_entries(place: Place, at: datetime, *, reason: str | None = None
                     ) -> list[JsonObject]:
    """The ward and the bed the patient is in from `at`."""
    bed_entry: JsonObject = {
        "location": ref("Location", place.bed_id, place.label()), "status": "active",
        "physicalType": physical_type(PhysicalType.BED), "period": {"start": to_instant(at)}}
    if reason:
        bed_entry["extension"] = [{"url": TRANSFER_REASON, "valueString": reason}]
    return [
        {"location": ref("Location", place.ward_id, place.ward.get("name")), "status": "active",
         "physicalType": physical_type(PhysicalType.WARD), "period": {"start": to_instant(at)}},
        bed_entry,
    ]


def closed_locations(encounter: JsonObject, at: datetime) -> list[JsonObject]:
    """The encounter's places, those still active now completed at `at`."""
    closed = []
    for entry in encounter.get("location", []):
        if entry.get("status") == "active":
            entry = {**entry, "status": "completed",
                     "period": {**entry.get("period", {}), "end": to_instant(at)}}
        closed.append(entry)
    return closed


def diagnosis_condition(condition_id: str, code: JsonObject, patient_id: str,
                        encounter_id: str, at: datetime, *, verification: str) -> JsonObject:
    """A diagnosis of the stay, coded in ICD-10 (`verification`: provisional on admission,
    confirmed on discharge)."""
    condition: JsonObject = {
        "resourceType": "Condition", "id": condition_id,
        "clinicalStatus": {"coding": [coding(CONDITION_CLINICAL, "active", "Active")]},
        "verificationStatus": {"coding": [coding(CONDITION_VERIFICATION, verification)]},
        "category": [{"coding": [coding(CONDITION_CATEGORY, "encounter-diagnosis",
                                        "Encounter Diagnosis")]}],
        "code": {"coding": [code]},
        "subject": ref("Patient", patient_id),
        "encounter": ref("Encounter", encounter_id),
        "recordedDate": to_instant(at),
    }
    if code.get("display"):
        condition["code"]["text"] = code["display"]
    return condition


def encounter_diagnosis(condition_id: str, role: DiagnosisRole, rank: int) -> JsonObject:
    names = {DiagnosisRole.ADMISSION: "Admission diagnosis",
             DiagnosisRole.DISCHARGE: "Discharge diagnosis"}
    return {"condition": ref("Condition", condition_id),
            "use": {"coding": [coding(DIAGNOSIS_ROLE, role.value, names[role])]},
            "rank": rank}


def discharge_summary(composition_id: str, encounter: JsonObject, summary: str,
                      at: datetime) -> JsonObject:
    """The discharge summary (出院小结) as a Composition about the stay."""
    authors = [p["individual"] for p in encounter.get("participant", [])
               if p.get("individual")] or [encounter["serviceProvider"]]
    paragraphs = "".join(f"<p>{html.escape(line)}</p>"
                         for line in summary.splitlines() if line.strip())
    return {
        "resourceType": "Composition", "id": composition_id, "status": "final",
        "type": {"coding": [coding("http://loinc.org", "18842-5", "Discharge summary")],
                 "text": "出院小结"},
        "subject": encounter["subject"], "encounter": ref("Encounter", str(encounter["id"])),
        "date": to_instant(at), "author": authors, "title": "出院小结 Discharge summary",
        "section": [{"title": "出院小结", "text": {
            "status": "generated",
            "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{paragraphs or "<p/>"}</div>'}}],
    }


def bed_in_state(bed: JsonObject, status: BedStatus, *, reservation: JsonObject | None = None,
                 note: str | None = None) -> JsonObject:
    """The bed's Location in a new state (a reservation's details kept only while reserved;
    `note`: why it is closed)."""
    changed = {k: v for k, v in bed.items() if k != "meta"}
    changed["operationalStatus"] = status.coding()
    extensions = [e for e in bed.get("extension", []) if e.get("url") != BED_RESERVATION]
    if reservation is not None:
        extensions.append(reservation)
    if extensions:
        changed["extension"] = extensions
    else:
        changed.pop("extension", None)
    if note:
        changed["description"] = note
    elif BedStatus.of(bed) is BedStatus.CLOSED:
        changed.pop("description", None)
    return changed


def reservation_of(bed: JsonObject) -> dict[str, Any]:
    """A reserved bed's reservation details by name (expires, patient, reason)."""
    for item in bed.get("extension", []):
        if isinstance(item, dict) and item.get("url") == BED_RESERVATION:
            return {str(e.get("url")): next((v for k, v in e.items() if k.startswith("value")),
                                            None) for e in item.get("extension", [])}
    return {}
