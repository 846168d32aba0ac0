"""A small hospital network written out by hand, for the inpatient tests: what each test
expects follows from what is here.

Hospital `hosp` (campuses `c1`, `c2`) and hospital `other` (campus `o1`):
- c1 / ward `w-card` (cardiology): room r1 with beds `b1`, `b2`, `b3`
- c1 / ward `w-obs` (obstetrics, women only): bed `b-obs`
- c1 / ward `w-ped` (pediatrics, up to 14 years): bed `b-ped`
- c2 / ward `w-card2` (cardiology, the other campus): bed `b-c2`
- o1 / ward `w-other` (the other hospital's cardiology): bed `b-other`
Patients: `man` (born 1958), `woman` (1990), `child` (2019), `man2` (1971).
"""

from __future__ import annotations

from typing import Any

from yilian.domains.inpatient.codes import ICD10, BedStatus
from yilian.domains.network.codes import (
    PRACTITIONER_ROLE,
    WARD_RESTRICTION,
    OrganizationKind,
    PhysicalType,
    organization_types,
    physical_type,
)

JsonObject = dict[str, Any]
CARDIOLOGY = "hosp-cardiology"
OBSTETRICS = "hosp-obstetrics"
PEDIATRICS = "hosp-pediatrics"
OTHER_CARDIOLOGY = "other-cardiology"
DOCTOR = "doc-1"
MI = {"system": ICD10, "code": "I21.9", "display": "急性心肌梗死"}
HEART_FAILURE = {"system": ICD10, "code": "I50.9", "display": "心力衰竭"}


def _org(res_id: str, name: str, kind: OrganizationKind, part_of: str | None = None
         ) -> JsonObject:
    org: JsonObject = {"resourceType": "Organization", "id": res_id, "active": True,
                       "name": name, "type": organization_types(kind)}
    if part_of:
        org["partOf"] = {"reference": f"Organization/{part_of}"}
    return org


def _location(res_id: str, name: str, kind: PhysicalType, campus: str,
              part_of: str | None, **extra: Any) -> JsonObject:
    location: JsonObject = {"resourceType": "Location", "id": res_id, "status": "active",
                            "name": name, "mode": "instance", "physicalType": physical_type(kind),
                            "managingOrganization": {"reference": f"Organization/{campus}"}}
    if part_of:
        location["partOf"] = {"reference": f"Location/{part_of}"}
    if kind is PhysicalType.BED:
        location["operationalStatus"] = BedStatus.FREE.coding()
    location.update(extra)
    return location


def _ward(res_id: str, name: str, campus: str, building: str, department: str,
          **limits: Any) -> JsonObject:
    details: list[JsonObject] = [{"url": "department", "valueReference": {
        "reference": f"HealthcareService/{department}"}}]
    if "sex" in limits:
        details.append({"url": "sex", "valueCode": limits["sex"]})
    if "max_age" in limits:
        details.append({"url": "maxAge", "valueInteger": limits["max_age"]})
    return _location(res_id, name, PhysicalType.WARD, campus, building,
                     extension=[{"url": WARD_RESTRICTION, "extension": details}])


def _department(res_id: str, name: str, hospital: str) -> JsonObject:
    return {"resourceType": "HealthcareService", "id": res_id, "active": True, "name": name,
            "providedBy": {"reference": f"Organization/{hospital}"}}


def _patient(res_id: str, family: str, given: str, gender: str, birth: str) -> JsonObject:
    return {"resourceType": "Patient", "id": res_id, "name": [{"family": family,
                                                              "given": [given]}],
            "gender": gender, "birthDate": birth,
            "managingOrganization": {"reference": "Organization/hosp"}}


def network() -> list[JsonObject]:
    site, building = PhysicalType.SITE, PhysicalType.BUILDING
    room, bed = PhysicalType.ROOM, PhysicalType.BED
    return [
        _org("hosp", "第一医院", OrganizationKind.HOSPITAL),
        _org("c1", "第一医院本部", OrganizationKind.CAMPUS, "hosp"),
        _org("c2", "第一医院滨江院区", OrganizationKind.CAMPUS, "hosp"),
        _org("other", "第二医院", OrganizationKind.HOSPITAL),
        _org("o1", "第二医院本部", OrganizationKind.CAMPUS, "other"),
        _department(CARDIOLOGY, "心血管内科", "hosp"),
        _department(OBSTETRICS, "产科", "hosp"),
        _department(PEDIATRICS, "儿科", "hosp"),
        _department(OTHER_CARDIOLOGY, "心血管内科", "other"),
        {"resourceType": "Practitioner", "id": DOCTOR, "name": [{"family": "李",
                                                                "given": ["医生"]}]},
        {"resourceType": "PractitionerRole", "id": f"{DOCTOR}-role",
         "practitioner": {"reference": f"Practitioner/{DOCTOR}"},
         "organization": {"reference": "Organization/hosp"},
         "healthcareService": [{"reference": f"HealthcareService/{d}"}
                               for d in (CARDIOLOGY, OBSTETRICS, PEDIATRICS)],
         "code": [{"coding": [{"system": PRACTITIONER_ROLE, "code": "doctor"}]}]},
        _location("s1", "本部", site, "c1", None),
        _location("bu1", "1号楼", building, "c1", "s1"),
        _ward("w-card", "心内一病区", "c1", "bu1", CARDIOLOGY),
        _location("r1", "01室", room, "c1", "w-card"),
        _location("b1", "01床", bed, "c1", "r1"),
        _location("b2", "02床", bed, "c1", "r1"),
        _location("b3", "03床", bed, "c1", "r1"),
        _ward("w-obs", "产科病区", "c1", "bu1", OBSTETRICS, sex="female"),
        _location("b-obs", "01床", bed, "c1", "w-obs"),
        _ward("w-ped", "儿科病区", "c1", "bu1", PEDIATRICS, max_age=14),
        _location("b-ped", "01床", bed, "c1", "w-ped"),
        _location("s2", "滨江", site, "c2", None),
        _ward("w-card2", "滨江心内病区", "c2", "s2", CARDIOLOGY),
        _location("b-c2", "01床", bed, "c2", "w-card2"),
        _location("s3", "第二医院", site, "o1", None),
        _ward("w-other", "心内病区", "o1", "s3", OTHER_CARDIOLOGY),
        _location("b-other", "01床", bed, "o1", "w-other"),
        _location("r-not-bed", "02室", room, "c1", "w-card"),
        _patient("man", "王", "建国", "male", "1958-03-02"),
        _patient("woman", "陈", "静", "female", "1990-07-15"),
        _patient("child", "刘", "小宝", "male", "2019-01-20"),
        _patient("man2", "赵", "强", "male", "1971-11-30"),
    ]


def ref(value: str) -> JsonObject:
    return {"reference": value}


def admit_parameters(patient: str = "man", bed: str = "b1", department: str = CARDIOLOGY,
                     *, diagnosis: JsonObject | None = None, source: str | None = "outpatient",
                     **extra: Any) -> JsonObject:
    parameters: list[JsonObject] = [
        {"name": "patient", "valueReference": ref(f"Patient/{patient}")},
        {"name": "department", "valueReference": ref(f"HealthcareService/{department}")},
        {"name": "bed", "valueReference": ref(f"Location/{bed}")},
        {"name": "practitioner", "valueReference": ref(f"Practitioner/{DOCTOR}")},
        {"name": "diagnosis", "valueCoding": diagnosis or MI},
    ]
    if source:
        parameters.append({"name": "admitSource", "valueCode": source})
    parameters.extend({"name": k, **v} for k, v in extra.items())
    return {"resourceType": "Parameters", "parameter": parameters}


def parameters(**values: JsonObject) -> JsonObject:
    return {"resourceType": "Parameters",
            "parameter": [{"name": name, **value} for name, value in values.items()]}
