"""Bed states, admission sources, discharge dispositions: the inpatient vocabulary."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from yilian.domains.network.codes import CANONICAL, coding

BED_STATUS_V2 = "http://terminology.hl7.org/CodeSystem/v2-0116"
BED_STATUS_YILIAN = f"{CANONICAL}/CodeSystem/bed-status"
ADMIT_SOURCE = "http://terminology.hl7.org/CodeSystem/admit-source"
DISCHARGE_DISPOSITION = "http://terminology.hl7.org/CodeSystem/discharge-disposition"
DIAGNOSIS_ROLE = "http://terminology.hl7.org/CodeSystem/diagnosis-role"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
ENCOUNTER_DEPARTMENT = f"{CANONICAL}/StructureDefinition/encounter-department"
EXPECTED_DISCHARGE = f"{CANONICAL}/StructureDefinition/expected-discharge"
BED_RESERVATION = f"{CANONICAL}/StructureDefinition/bed-reservation"
TRANSFER_REASON = f"{CANONICAL}/StructureDefinition/transfer-reason"


class BedStatus(StrEnum):
    """Location.operationalStatus of a bed: HL7 v2 table 0116, with `reserved` added."""

    FREE = "U"  # unoccupied
    OCCUPIED = "O"
    HOUSEKEEPING = "H"  # being cleaned after a discharge or transfer
    CLOSED = "C"
    ISOLATED = "I"
    CONTAMINATED = "K"
    RESERVED = "reserved"  # Yilian: held for a referral or a planned admission, until expiry

    @property
    def system(self) -> str:
        return BED_STATUS_YILIAN if self is BedStatus.RESERVED else BED_STATUS_V2

    @property
    def names(self) -> tuple[str, str]:
        return _BED_STATUS_NAMES[self]

    def coding(self) -> dict[str, Any]:
        return coding(self.system, self.value, self.names[1])

    @classmethod
    def of(cls, location: dict[str, Any]) -> BedStatus:
        """A bed's state; a bed without one is free (beds are made free)."""
        status = location.get("operationalStatus")
        if not isinstance(status, dict):
            return cls.FREE
        code = status.get("code")
        for member in cls:
            if member.value == code and member.system == status.get("system"):
                return member
        return cls.FREE if code is None else cls.CLOSED  # an unknown state admits no one


_BED_STATUS_NAMES: dict[BedStatus, tuple[str, str]] = {
    BedStatus.FREE: ("空床", "Unoccupied"),
    BedStatus.OCCUPIED: ("占用", "Occupied"),
    BedStatus.HOUSEKEEPING: ("清洁中", "Housekeeping"),
    BedStatus.CLOSED: ("关闭", "Closed"),
    BedStatus.ISOLATED: ("隔离", "Isolated"),
    BedStatus.CONTAMINATED: ("污染", "Contaminated"),
    BedStatus.RESERVED: ("预留", "Reserved"),
}


class AdmitSource(StrEnum):
    """Where an admission comes from; the issue's names map onto HL7 admit-source codes."""

    OUTPATIENT = "outpatient"  # 门诊
    EMERGENCY = "emergency"  # 急诊
    REFERRAL = "referral"  # 转诊 (from another hospital, a community centre, a family doctor)

    @property
    def hl7(self) -> tuple[str, str]:
        return _ADMIT_SOURCE_HL7[self]

    @property
    def zh(self) -> str:
        return {"outpatient": "门诊", "emergency": "急诊", "referral": "转诊"}[self.value]


_ADMIT_SOURCE_HL7: dict[AdmitSource, tuple[str, str]] = {
    AdmitSource.OUTPATIENT: ("outp", "From outpatient department"),
    AdmitSource.EMERGENCY: ("emd", "From accident/emergency department"),
    AdmitSource.REFERRAL: ("gp", "General Practitioner referral"),
}


DISPOSITION_YILIAN = f"{CANONICAL}/CodeSystem/discharge-disposition"


class Disposition(StrEnum):
    """离院方式 of the medical record's front sheet (codes 1-5, 9), each with the HL7
    discharge-disposition code generic clients understand."""

    HOME = "home"  # 1 医嘱离院
    TRANSFER_HOSPITAL = "transfer-hospital"  # 2 医嘱转院
    TRANSFER_COMMUNITY = "transfer-community"  # 3 医嘱转社区卫生服务机构/乡镇卫生院
    AGAINST_ADVICE = "against-advice"  # 4 非医嘱离院
    DIED = "died"  # 5 死亡
    OTHER = "other"  # 9 其他

    @property
    def front_sheet(self) -> str:
        return _DISPOSITION_NAMES[self][0]

    @property
    def zh(self) -> str:
        return _DISPOSITION_NAMES[self][1]

    @property
    def hl7(self) -> tuple[str, str]:
        return _DISPOSITION_NAMES[self][2], _DISPOSITION_NAMES[self][3]

    @classmethod
    def parse(cls, code: str) -> Disposition | None:
        """From Yilian's code, the front sheet's digit or the HL7 code."""
        for member in cls:
            if code in (member.value, member.front_sheet, member.hl7[0]):
                return member
        return None


_DISPOSITION_NAMES: dict[Disposition, tuple[str, str, str, str]] = {
    Disposition.HOME: ("1", "医嘱离院", "home", "Home"),
    Disposition.TRANSFER_HOSPITAL: ("2", "医嘱转院", "other-hcf", "Other healthcare facility"),
    Disposition.TRANSFER_COMMUNITY: ("3", "医嘱转社区", "alt-home", "Alternative home"),
    Disposition.AGAINST_ADVICE: ("4", "非医嘱离院", "aadvice", "Left against advice"),
    Disposition.DIED: ("5", "死亡", "exp", "Expired"),
    Disposition.OTHER: ("9", "其他", "oth", "Other"),
}


class DiagnosisRole(StrEnum):
    ADMISSION = "AD"
    DISCHARGE = "DD"
