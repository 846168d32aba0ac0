"""The network's code systems and identifier systems, as FHIR canonical URLs.

Yilian's own systems live under CANONICAL; where an official system fits (HL7's location
physical types, organization types) it is used as well, so that generic clients understand.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

CANONICAL = "http://yilian.example.org/fhir"

ORGANIZATION_KIND = f"{CANONICAL}/CodeSystem/organization-kind"
HOSPITAL_AFFILIATION = f"{CANONICAL}/CodeSystem/hospital-affiliation"
HOSPITAL_GRADE = f"{CANONICAL}/CodeSystem/hospital-grade"
CLINICAL_SPECIALTY = f"{CANONICAL}/CodeSystem/clinical-specialty"
HL7_ORGANIZATION_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
LOCATION_PHYSICAL_TYPE = "http://terminology.hl7.org/CodeSystem/location-physical-type"
PRACTITIONER_ROLE = f"{CANONICAL}/CodeSystem/practitioner-role"
INSURANCE_TYPE = f"{CANONICAL}/CodeSystem/insurance-type"  # the national platform's insutype

# Identifiers.
USCC = f"{CANONICAL}/sid/uscc"  # 统一社会信用代码 (GB 32100-2015), organizations
RESIDENT_ID = f"{CANONICAL}/sid/resident-id"  # 居民身份证号 (GB 11643-1999)
INSURANCE_CARD = f"{CANONICAL}/sid/insurance-card"  # 医保卡号 / 社保卡号
PRACTITIONER_LICENCE = f"{CANONICAL}/sid/practitioner-licence"  # 医师执业证书编码
WARD_RESTRICTION = f"{CANONICAL}/StructureDefinition/ward-restriction"


def mrn_system(hospital_id: str) -> str:
    """Each hospital numbers its own patients (病案号): one system per hospital."""
    return f"{CANONICAL}/sid/mrn/{hospital_id}"


def inpatient_number_system(hospital_id: str) -> str:
    """Each hospital numbers its inpatient stays (住院号)."""
    return f"{CANONICAL}/sid/inpatient-number/{hospital_id}"


class OrganizationKind(StrEnum):
    MEDICAL_CENTRE = "medical-centre"  # 医学中心 / 大学医学部
    HOSPITAL = "hospital"  # 医院 (a legal entity)
    CAMPUS = "campus"  # 院区
    COMMUNITY_CENTRE = "community-health-centre"  # 社区卫生服务中心
    FAMILY_DOCTOR_TEAM = "family-doctor-team"  # 家庭医生团队


ORGANIZATION_KIND_NAMES: dict[OrganizationKind, tuple[str, str]] = {
    OrganizationKind.MEDICAL_CENTRE: ("医学中心", "Medical centre"),
    OrganizationKind.HOSPITAL: ("医院", "Hospital"),
    OrganizationKind.CAMPUS: ("院区", "Campus"),
    OrganizationKind.COMMUNITY_CENTRE: ("社区卫生服务中心", "Community health centre"),
    OrganizationKind.FAMILY_DOCTOR_TEAM: ("家庭医生团队", "Family-doctor team"),
}

# The HL7 organization type that generic clients understand, for each kind.
_HL7_TYPE: dict[OrganizationKind, tuple[str, str]] = {
    OrganizationKind.MEDICAL_CENTRE: ("edu", "Educational Institute"),
    OrganizationKind.HOSPITAL: ("prov", "Healthcare Provider"),
    OrganizationKind.CAMPUS: ("prov", "Healthcare Provider"),
    OrganizationKind.COMMUNITY_CENTRE: ("prov", "Healthcare Provider"),
    OrganizationKind.FAMILY_DOCTOR_TEAM: ("team", "Organizational team"),
}


class Affiliation(StrEnum):
    """How a hospital belongs to the medical centre."""

    DIRECT = "direct"  # 直属附属医院
    NON_DIRECT = "non-direct"  # 非直属附属医院
    COOPERATING = "cooperating"  # 合作医院


AFFILIATION_NAMES: dict[Affiliation, tuple[str, str]] = {
    Affiliation.DIRECT: ("直属附属医院", "Directly affiliated hospital"),
    Affiliation.NON_DIRECT: ("非直属附属医院", "Non-directly affiliated hospital"),
    Affiliation.COOPERATING: ("合作医院", "Cooperating hospital"),
}


class Grade(StrEnum):
    """医院等级: level (一级/二级/三级) and grade (甲/乙/丙)."""

    L3A = "3A"
    L3B = "3B"
    L3C = "3C"
    L2A = "2A"
    L2B = "2B"
    L2C = "2C"
    L1A = "1A"
    L1B = "1B"
    L1C = "1C"
    UNGRADED = "ungraded"


GRADE_NAMES: dict[Grade, tuple[str, str]] = {
    Grade.L3A: ("三级甲等", "Tertiary, grade A"),
    Grade.L3B: ("三级乙等", "Tertiary, grade B"),
    Grade.L3C: ("三级丙等", "Tertiary, grade C"),
    Grade.L2A: ("二级甲等", "Secondary, grade A"),
    Grade.L2B: ("二级乙等", "Secondary, grade B"),
    Grade.L2C: ("二级丙等", "Secondary, grade C"),
    Grade.L1A: ("一级甲等", "Primary, grade A"),
    Grade.L1B: ("一级乙等", "Primary, grade B"),
    Grade.L1C: ("一级丙等", "Primary, grade C"),
    Grade.UNGRADED: ("未定级", "Not graded"),
}


class PhysicalType(StrEnum):
    """Location.physicalType (HL7 location-physical-type) down the campus tree."""

    SITE = "si"
    BUILDING = "bu"
    WARD = "wa"
    ROOM = "ro"
    BED = "bd"


PHYSICAL_TYPE_NAMES: dict[PhysicalType, str] = {
    PhysicalType.SITE: "Site", PhysicalType.BUILDING: "Building", PhysicalType.WARD: "Ward",
    PhysicalType.ROOM: "Room", PhysicalType.BED: "Bed",
}


def coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"system": system, "code": code}
    if display:
        found["display"] = display
    return found


def concept(system: str, code: str, zh: str, en: str | None = None) -> dict[str, Any]:
    """A CodeableConcept whose text is the Chinese name (clinicians read Chinese first)."""
    return {"coding": [coding(system, code, en or zh)], "text": zh}


def organization_types(kind: OrganizationKind, *, affiliation: Affiliation | None = None,
                       grade: Grade | None = None) -> list[dict[str, Any]]:
    hl7_code, hl7_display = _HL7_TYPE[kind]
    zh, en = ORGANIZATION_KIND_NAMES[kind]
    types = [{"coding": [coding(ORGANIZATION_KIND, kind.value, en),
                         coding(HL7_ORGANIZATION_TYPE, hl7_code, hl7_display)], "text": zh}]
    if affiliation is not None:
        types.append(concept(HOSPITAL_AFFILIATION, affiliation.value,
                             *AFFILIATION_NAMES[affiliation]))
    if grade is not None:
        types.append(concept(HOSPITAL_GRADE, grade.value, *GRADE_NAMES[grade]))
    return types


def physical_type(kind: PhysicalType) -> dict[str, Any]:
    return {"coding": [coding(LOCATION_PHYSICAL_TYPE, kind.value, PHYSICAL_TYPE_NAMES[kind])]}


def code_in(concepts: Any, system: str) -> str | None:
    """The first code of `system` in a CodeableConcept or a list of them."""
    for item in concepts if isinstance(concepts, list) else [concepts]:
        if not isinstance(item, dict):
            continue
        for found in item.get("coding") or ():
            if isinstance(found, dict) and found.get("system") == system:
                code = found.get("code")
                return code if isinstance(code, str) else None
    return None


# --- the unified social credit code (GB 32100-2015) -----------------------------------------

_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def uscc_check(first17: str) -> str:
    """The 18th character of a unified social credit code."""
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_CHARS[(31 - total % 31) % 31]


def is_uscc(value: str) -> bool:
    if len(value) != 18 or any(c not in _USCC_CHARS for c in value):
        return False
    return uscc_check(value[:17]) == value[17]
