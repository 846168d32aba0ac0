"""A deterministic data set for the search benchmark: a Chinese hospital network's records.

`generate(patients)` yields transaction Bundles (bytes) of about `CHUNK` entries each, every
entry a PUT to a client-chosen id so that references are stable. The first Bundle holds the
network (Organizations, Locations, Practitioners); each later one holds whole patients (a
patient's resources never span two Bundles, so every reference resolves in the database or in
the same Bundle), which lets the later Bundles be posted in any order and in parallel.

Per patient (seeded `random.Random`: the same scale always gives the same bytes):
    Patient            Chinese name (汉字, and its pinyin as a second name), resident ID
                       (18 characters, with its check digit) and the home hospital's MRN
    Encounter × 2-3    ambulatory, inpatient or emergency, at a clinic, ward or emergency
                       department of a campus (Location partOf), with a practitioner
    Condition × 1      per encounter: an ICD-10 diagnosis
    Observation × 6    per encounter: 4 vital signs and 2 laboratory results (LOINC, UCUM)
    MedicationRequest  one per encounter, plus one standing order
so 20 resources for a patient with two encounters, 29 with three (one patient in five):
21.8 on average, 1,090,000 resources for 50,000 patients. Generation is streamed: only the
Bundle being filled is in memory.

`Sample` records, while generating, what the benchmark needs to write queries that find
something: a regular subset of the patients with their identifiers, names, observations and
diagnoses, and the locations encounters happened at.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

import orjson

CHUNK = 500  # entries per transaction Bundle (at least; a patient is never split)
SEED = 20240501

CST = timezone(timedelta(hours=8))  # China Standard Time: no daylight saving since 1991

RESIDENT_ID_SYSTEM = "urn:oid:2.16.156.10011.1.1"  # 居民身份证号码
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
ATC = "http://www.whocc.no/atc"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
PHYSICAL_TYPE = "http://terminology.hl7.org/CodeSystem/location-physical-type"
ORG_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"

FIRST_DAY = date(2015, 1, 1)
LAST_DAY = date(2024, 12, 31)
YEARS = tuple(range(FIRST_DAY.year, LAST_DAY.year + 1))

# --- the network -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hospital:
    key: str  # id suffix
    name: str
    city: str
    district: str
    area_code: str  # the first six digits of local resident IDs
    mrn_oid: str
    campuses: tuple[tuple[str, str], ...]  # (key, name)

    @property
    def mrn_system(self) -> str:
        return f"urn:oid:{self.mrn_oid}"


HOSPITALS = (
    Hospital("bj", "仁和医院", "北京市", "东城区", "110101", "1.2.156.888001.1.2",
             (("dc", "东单院区"), ("xs", "西山院区"))),
    Hospital("sh", "仁和医院浦东分院", "上海市", "浦东新区", "310115", "1.2.156.888002.1.2",
             (("lj", "陆家嘴院区"), ("zj", "张江院区"))),
    Hospital("gz", "仁和医院天河分院", "广州市", "天河区", "440106", "1.2.156.888003.1.2",
             (("th", "天河院区"), ("hz", "海珠院区"))),
    Hospital("cd", "仁和医院锦江分院", "成都市", "锦江区", "510104", "1.2.156.888004.1.2",
             (("jj", "锦江院区"), ("gx", "高新院区"))),
)

DEPARTMENTS = (  # (key, name, ICD-10 codes it mostly sees)
    ("card", "心内科", ("I10", "I25.1", "I48.9", "I50.9", "E78.5")),
    ("resp", "呼吸内科", ("J18.9", "J44.9", "J06.9", "A15.0", "C34.9")),
    ("endo", "内分泌科", ("E11.9", "E03.9", "E78.5", "E11.9")),
    ("neur", "神经内科", ("I63.9", "G40.9", "F32.9", "I10")),
    ("gast", "消化内科", ("K29.7", "K21.9", "B18.1", "C16.9", "C22.0")),
    ("surg", "普外科", ("K80.2", "K35.8", "K29.7", "C16.9")),
    ("orth", "骨科", ("S72.0", "M54.5", "M54.5")),
    ("nephr", "肾内科", ("N18.9", "N39.0", "D64.9", "I10")),
)

ICD10_NAMES = {
    "I10": "原发性高血压", "I25.1": "动脉粥样硬化性心脏病", "I48.9": "心房颤动",
    "I50.9": "心力衰竭", "E78.5": "高脂血症", "J18.9": "肺炎", "J44.9": "慢性阻塞性肺病",
    "J06.9": "急性上呼吸道感染", "A15.0": "肺结核", "C34.9": "支气管和肺恶性肿瘤",
    "E11.9": "2型糖尿病", "E03.9": "甲状腺功能减退症", "I63.9": "脑梗死", "G40.9": "癫痫",
    "F32.9": "抑郁发作", "K29.7": "胃炎", "K21.9": "胃食管反流病", "B18.1": "慢性乙型病毒性肝炎",
    "C16.9": "胃恶性肿瘤", "C22.0": "肝细胞癌", "K80.2": "胆囊结石", "K35.8": "急性阑尾炎",
    "S72.0": "股骨颈骨折", "M54.5": "腰痛", "N18.9": "慢性肾脏病", "N39.0": "泌尿道感染",
    "D64.9": "贫血", "R50.9": "发热",
}

MEDICATIONS = {  # ATC code: (name, dosage text)
    "C08CA01": ("氨氯地平片 5mg", "口服，每日一次，每次1片"),
    "C10AA05": ("阿托伐他汀钙片 20mg", "口服，每晚一次，每次1片"),
    "B01AC06": ("阿司匹林肠溶片 100mg", "口服，每日一次，每次1片"),
    "C07AB02": ("酒石酸美托洛尔片 25mg", "口服，每日两次，每次1片"),
    "C03CA01": ("呋塞米片 20mg", "口服，每日一次，每次1片"),
    "J01DD04": ("注射用头孢曲松钠 1g", "静脉滴注，每日一次，每次2g"),
    "J01CA04": ("阿莫西林胶囊 0.25g", "口服，每日三次，每次2粒"),
    "R05CB01": ("乙酰半胱氨酸泡腾片 600mg", "口服，每日一次，每次1片"),
    "A10BA02": ("盐酸二甲双胍片 0.5g", "口服，每日三次，每次1片，随餐"),
    "A10AB01": ("重组人胰岛素注射液", "皮下注射，每日三次，餐前30分钟"),
    "H03AA01": ("左甲状腺素钠片 50μg", "口服，每日一次，晨起空腹"),
    "N06AB06": ("盐酸舍曲林片 50mg", "口服，每日一次，每次1片"),
    "N03AG01": ("丙戊酸钠缓释片 0.5g", "口服，每日两次，每次1片"),
    "A02BC01": ("奥美拉唑肠溶胶囊 20mg", "口服，每日两次，每次1粒"),
    "J05AF07": ("富马酸替诺福韦二吡呋酯片 300mg", "口服，每日一次，每次1片"),
    "N02BE01": ("对乙酰氨基酚片 0.5g", "口服，发热时服用，每次1片"),
    "M01AE01": ("布洛芬缓释胶囊 0.3g", "口服，每日两次，每次1粒"),
    "B03AA07": ("硫酸亚铁片 0.3g", "口服，每日三次，每次1片"),
}

TREATMENT = {  # ICD-10 → the ATC codes prescribed for it
    "I10": ("C08CA01", "C07AB02"), "I25.1": ("B01AC06", "C10AA05"), "I48.9": ("C07AB02",),
    "I50.9": ("C03CA01", "C07AB02"), "E78.5": ("C10AA05",), "J18.9": ("J01DD04", "R05CB01"),
    "J44.9": ("R05CB01",), "J06.9": ("J01CA04", "N02BE01"), "A15.0": ("R05CB01",),
    "C34.9": ("N02BE01",), "E11.9": ("A10BA02", "A10AB01"), "E03.9": ("H03AA01",),
    "I63.9": ("B01AC06", "C10AA05"), "G40.9": ("N03AG01",), "F32.9": ("N06AB06",),
    "K29.7": ("A02BC01",), "K21.9": ("A02BC01",), "B18.1": ("J05AF07",), "C16.9": ("A02BC01",),
    "C22.0": ("J05AF07",), "K80.2": ("J01DD04",), "K35.8": ("J01DD04",), "S72.0": ("M01AE01",),
    "M54.5": ("M01AE01",), "N18.9": ("C03CA01", "B03AA07"), "N39.0": ("J01CA04",),
    "D64.9": ("B03AA07",), "R50.9": ("N02BE01",),
}


@dataclass(frozen=True)
class Measure:
    code: str
    display: str
    unit: str  # UCUM
    low: float
    high: float
    decimals: int
    category: str  # vital-signs | laboratory


VITALS = (
    Measure("8867-4", "Heart rate", "/min", 55, 110, 0, "vital-signs"),
    Measure("8310-5", "Body temperature", "Cel", 36.0, 39.2, 1, "vital-signs"),
    Measure("8480-6", "Systolic blood pressure", "mm[Hg]", 95, 175, 0, "vital-signs"),
    Measure("8462-4", "Diastolic blood pressure", "mm[Hg]", 55, 105, 0, "vital-signs"),
)
LABS = (
    Measure("15074-8", "Glucose [Moles/volume] in Blood", "mmol/L", 3.9, 14.0, 1,
            "laboratory"),
    Measure("718-7", "Hemoglobin [Mass/volume] in Blood", "g/L", 85, 170, 0, "laboratory"),
    Measure("6690-2", "Leukocytes [#/volume] in Blood", "10*9/L", 3.2, 15.0, 1, "laboratory"),
    Measure("777-3", "Platelets [#/volume] in Blood", "10*9/L", 90, 400, 0, "laboratory"),
    Measure("14682-9", "Creatinine [Moles/volume] in Serum or Plasma", "umol/L", 45, 180, 0,
            "laboratory"),
    Measure("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 4.5, 10.5, 1,
            "laboratory"),
    Measure("14647-2", "Cholesterol [Moles/volume] in Serum or Plasma", "mmol/L", 3.0, 7.5, 2,
            "laboratory"),
    Measure("1742-6", "Alanine aminotransferase [Enzymatic activity/volume] in Serum or "
            "Plasma", "U/L", 7, 120, 0, "laboratory"),
)
MEASURES = {m.code: m for m in (*VITALS, *LABS)}

# The most common family names (about 55% of Chinese people), weighted by frequency.
FAMILY_NAMES = (
    ("王", "Wang", 72), ("李", "Li", 70), ("张", "Zhang", 66), ("刘", "Liu", 53),
    ("陈", "Chen", 46), ("杨", "Yang", 32), ("黄", "Huang", 24), ("赵", "Zhao", 21),
    ("吴", "Wu", 20), ("周", "Zhou", 20), ("徐", "Xu", 15), ("孙", "Sun", 15), ("马", "Ma", 14),
    ("朱", "Zhu", 13), ("胡", "Hu", 12), ("郭", "Guo", 11), ("何", "He", 10), ("林", "Lin", 10),
    ("高", "Gao", 10), ("罗", "Luo", 9), ("郑", "Zheng", 9), ("梁", "Liang", 8),
    ("谢", "Xie", 7), ("宋", "Song", 7), ("唐", "Tang", 6), ("许", "Xu", 6), ("韩", "Han", 6),
    ("冯", "Feng", 6), ("邓", "Deng", 6), ("曹", "Cao", 5), ("彭", "Peng", 5),
    ("曾", "Zeng", 5), ("肖", "Xiao", 5), ("田", "Tian", 5), ("董", "Dong", 5),
    ("袁", "Yuan", 4), ("潘", "Pan", 4), ("蒋", "Jiang", 4), ("蔡", "Cai", 4), ("余", "Yu", 4),
    ("杜", "Du", 4), ("叶", "Ye", 4), ("程", "Cheng", 4), ("苏", "Su", 3), ("魏", "Wei", 3),
    ("吕", "Lyu", 3), ("丁", "Ding", 3), ("任", "Ren", 3), ("沈", "Shen", 3),
    ("欧阳", "Ouyang", 1), ("司马", "Sima", 1), ("诸葛", "Zhuge", 1),
)
_FAMILY_WEIGHTS = tuple(w for _, _, w in FAMILY_NAMES)

GIVEN_MALE = (
    ("伟", "Wei"), ("强", "Qiang"), ("磊", "Lei"), ("军", "Jun"), ("洋", "Yang"),
    ("勇", "Yong"), ("杰", "Jie"), ("涛", "Tao"), ("明", "Ming"), ("超", "Chao"),
    ("建", "Jian"), ("国", "Guo"), ("平", "Ping"), ("刚", "Gang"), ("辉", "Hui"),
    ("鑫", "Xin"), ("宇", "Yu"), ("浩", "Hao"), ("晨", "Chen"), ("轩", "Xuan"), ("华", "Hua"),
    ("文", "Wen"), ("志", "Zhi"), ("海", "Hai"),
)
GIVEN_FEMALE = (
    ("芳", "Fang"), ("娜", "Na"), ("敏", "Min"), ("静", "Jing"), ("丽", "Li"), ("艳", "Yan"),
    ("娟", "Juan"), ("秀", "Xiu"), ("英", "Ying"), ("慧", "Hui"), ("玲", "Ling"),
    ("婷", "Ting"), ("雪", "Xue"), ("琳", "Lin"), ("欣", "Xin"), ("怡", "Yi"), ("涵", "Han"),
    ("梅", "Mei"), ("兰", "Lan"), ("霞", "Xia"), ("红", "Hong"), ("萍", "Ping"),
    ("华", "Hua"), ("文", "Wen"),
)

STREETS = ("建国路", "人民路", "解放路", "中山路", "和平街", "长安街", "文化路", "新华路", "光明路")

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def resident_id(area: str, born: date, sequence: int) -> str:
    """An 18-character resident ID: area, birth date, sequence (odd: male), ISO 7064 check."""
    body = f"{area}{born:%Y%m%d}{sequence:03d}"
    total = sum(int(digit) * weight for digit, weight in zip(body, _ID_WEIGHTS, strict=True))
    return body + _ID_CHECK[total % 11]


# --- what the benchmark learns from the data ---------------------------------------------------


@dataclass
class PatientFacts:
    id: str
    resident_id: str
    mrn_system: str
    mrn: str
    family: str  # 汉字
    family_pinyin: str
    observations: list[tuple[str, datetime]] = field(default_factory=list)  # (LOINC, when)
    conditions: list[str] = field(default_factory=list)  # ICD-10 codes


@dataclass
class Sample:
    """Facts about every `every`-th patient, and counts over the whole data set."""

    every: int = 1
    patients: list[PatientFacts] = field(default_factory=list)
    encounter_locations: Counter[str] = field(default_factory=Counter)  # ward/clinic id
    condition_codes: Counter[str] = field(default_factory=Counter)
    observation_days: Counter[tuple[str, date]] = field(default_factory=Counter)
    resources: Counter[str] = field(default_factory=Counter)  # by type
    bundles: int = 0

    @property
    def total(self) -> int:
        return sum(self.resources.values())


@dataclass(frozen=True)
class BundleBytes:
    name: str
    body: bytes
    entries: int


# --- generation --------------------------------------------------------------------------------


def _ref(res_type: str, res_id: str, display: str | None = None) -> dict[str, Any]:
    reference: dict[str, Any] = {"reference": f"{res_type}/{res_id}"}
    if display:
        reference["display"] = display
    return reference


def _instant(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return coding


@dataclass(frozen=True)
class Department:
    hospital: Hospital
    campus: str  # campus key
    key: str
    name: str
    diagnoses: tuple[str, ...]
    doctors: tuple[str, ...]  # Practitioner ids

    @property
    def ward(self) -> str:
        return f"loc-{self.hospital.key}-{self.campus}-{self.key}-ward"

    @property
    def clinic(self) -> str:
        return f"loc-{self.hospital.key}-{self.campus}-{self.key}-clinic"


class Network:
    """The hospitals, their campuses, wards, clinics, emergency departments and doctors."""

    def __init__(self, rng: random.Random) -> None:
        self.resources: list[dict[str, Any]] = []
        self.departments: dict[str, list[Department]] = {}  # by hospital key
        group = {
            "resourceType": "Organization", "id": "org-renhe",
            "active": True,
            "type": [{"coding": [_coding(ORG_TYPE, "prov", "Healthcare Provider")]}],
            "name": "仁和医疗集团",
        }
        self.resources.append(group)
        doctor = 0
        for hospital in HOSPITALS:
            org_id = f"org-{hospital.key}"
            self.resources.append({
                "resourceType": "Organization", "id": org_id, "active": True,
                "identifier": [{"system": "urn:oid:2.16.156.10011.1.5",
                                "value": f"12{hospital.area_code}{rng.randrange(10**10):010d}"}],
                "type": [{"coding": [_coding(ORG_TYPE, "prov", "Healthcare Provider")]}],
                "name": hospital.name,
                "address": [{"city": hospital.city, "district": hospital.district,
                             "country": "CN"}],
                "partOf": _ref("Organization", "org-renhe"),
            })
            departments = []
            for campus_key, campus_name in hospital.campuses:
                campus_id = f"loc-{hospital.key}-{campus_key}"
                self.resources.append({
                    "resourceType": "Location", "id": campus_id, "status": "active",
                    "name": f"{hospital.name}{campus_name}", "mode": "instance",
                    "physicalType": {"coding": [_coding(PHYSICAL_TYPE, "si", "Site")]},
                    "address": {"city": hospital.city, "district": hospital.district,
                                "country": "CN"},
                    "managingOrganization": _ref("Organization", org_id),
                })
                self.resources.append({
                    "resourceType": "Location", "id": f"{campus_id}-er", "status": "active",
                    "name": f"{hospital.name}{campus_name}急诊科", "mode": "instance",
                    "physicalType": {"coding": [_coding(PHYSICAL_TYPE, "area", "Area")]},
                    "managingOrganization": _ref("Organization", org_id),
                    "partOf": _ref("Location", campus_id),
                })
                for key, name, diagnoses in DEPARTMENTS:
                    doctors = []
                    for _ in range(3):
                        doctor += 1
                        doctors.append(self._practitioner(rng, doctor))
                    department = Department(hospital, campus_key, key, name, diagnoses,
                                            tuple(doctors))
                    departments.append(department)
                    self.resources.append({
                        "resourceType": "Location", "id": department.ward, "status": "active",
                        "name": f"{campus_name}{name}病区", "mode": "instance",
                        "physicalType": {"coding": [_coding(PHYSICAL_TYPE, "wa", "Ward")]},
                        "managingOrganization": _ref("Organization", org_id),
                        "partOf": _ref("Location", campus_id),
                    })
                    self.resources.append({
                        "resourceType": "Location", "id": department.clinic,
                        "status": "active", "name": f"{campus_name}{name}门诊",
                        "mode": "instance",
                        "physicalType": {"coding": [_coding(PHYSICAL_TYPE, "area", "Area")]},
                        "managingOrganization": _ref("Organization", org_id),
                        "partOf": _ref("Location", campus_id),
                    })
            self.departments[hospital.key] = departments

    def _practitioner(self, rng: random.Random, number: int) -> str:
        family, _, _ = rng.choices(FAMILY_NAMES, weights=_FAMILY_WEIGHTS)[0]
        male = rng.random() < 0.5
        given = rng.choice(GIVEN_MALE if male else GIVEN_FEMALE)[0]
        practitioner_id = f"pr-{number:04d}"
        self.resources.append({
            "resourceType": "Practitioner", "id": practitioner_id, "active": True,
            "identifier": [{"system": "urn:oid:2.16.156.10011.1.4",
                            "value": f"1101{rng.randrange(10**11):011d}"}],
            "name": [{"use": "official", "text": family + given, "family": family,
                      "given": [given]}],
            "gender": "male" if male else "female",
        })
        return practitioner_id


def _entry(resource: dict[str, Any]) -> dict[str, Any]:
    return {
        "fullUrl": f"{resource['resourceType']}/{resource['id']}",
        "resource": resource,
        "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"},
    }


def _bundle(name: str, resources: list[dict[str, Any]]) -> BundleBytes:
    body = orjson.dumps({"resourceType": "Bundle", "type": "transaction",
                         "entry": [_entry(r) for r in resources]})
    return BundleBytes(name, body, len(resources))


class _PatientMaker:
    def __init__(self, rng: random.Random, network: Network, sample: Sample) -> None:
        self.rng = rng
        self.network = network
        self.sample = sample
        self.used_ids: set[str] = set()
        self.mrn_counters: Counter[str] = Counter()
        self.span_days = (LAST_DAY - FIRST_DAY).days

    def _name(self, male: bool) -> tuple[str, str, str, str]:
        family, family_py, _ = self.rng.choices(FAMILY_NAMES, weights=_FAMILY_WEIGHTS)[0]
        pool = GIVEN_MALE if male else GIVEN_FEMALE
        parts = [self.rng.choice(pool) for _ in range(1 if self.rng.random() < 0.3 else 2)]
        given = "".join(p[0] for p in parts)
        given_py = "".join(p[1] for p in parts).capitalize()
        return family, family_py, given, given_py

    def _birth(self) -> date:
        age = min(95, max(0, int(self.rng.gauss(52, 20))))
        return date(2024 - age, 1, 1) + timedelta(days=self.rng.randrange(365))

    def _resident_id(self, hospital: Hospital, born: date, male: bool) -> str:
        while True:
            sequence = self.rng.randrange(500) * 2 + (1 if male else 0)
            value = resident_id(hospital.area_code, born, sequence)
            if value not in self.used_ids:
                self.used_ids.add(value)
                return value

    def patient(self, number: int) -> list[dict[str, Any]]:
        rng = self.rng
        hospital = HOSPITALS[rng.choices(range(len(HOSPITALS)), weights=(4, 3, 2, 2))[0]]
        male = rng.random() < 0.49
        family, family_py, given, given_py = self._name(male)
        born = self._birth()
        card = self._resident_id(hospital, born, male)
        self.mrn_counters[hospital.key] += 1
        mrn = f"{hospital.key.upper()}{self.mrn_counters[hospital.key]:08d}"
        patient_id = f"pat-{number:06d}"
        resources: list[dict[str, Any]] = [{
            "resourceType": "Patient", "id": patient_id, "active": True,
            "identifier": [
                {"use": "official",
                 "type": {"coding": [_coding(V2_0203, "NI",
                                             "National unique individual identifier")],
                          "text": "居民身份证"},
                 "system": RESIDENT_ID_SYSTEM, "value": card},
                {"use": "usual",
                 "type": {"coding": [_coding(V2_0203, "MR", "Medical record number")],
                          "text": "病案号"},
                 "system": hospital.mrn_system, "value": mrn,
                 "assigner": _ref("Organization", f"org-{hospital.key}")},
            ],
            "name": [
                {"use": "official", "text": family + given, "family": family,
                 "given": [given]},
                {"use": "usual", "text": f"{family_py} {given_py}", "family": family_py,
                 "given": [given_py]},
            ],
            "telecom": [{"system": "phone", "use": "mobile",
                         "value": f"1{rng.choice('3578')}{rng.randrange(10**9):09d}"}],
            "gender": "male" if male else "female",
            "birthDate": born.isoformat(),
            "address": [{"use": "home", "line": [f"{rng.choice(STREETS)}{rng.randrange(1, 300)}号"],
                         "city": hospital.city, "district": hospital.district,
                         "postalCode": f"{hospital.area_code[:4]}00", "country": "CN"}],
            "managingOrganization": _ref("Organization", f"org-{hospital.key}",
                                         hospital.name),
        }]
        facts = None
        if number % self.sample.every == 0:
            facts = PatientFacts(patient_id, card, hospital.mrn_system, mrn, family, family_py)
            self.sample.patients.append(facts)
        visits = 3 if rng.random() < 0.2 else 2
        first_day = max(0, (born - FIRST_DAY).days)
        days = sorted(rng.randrange(first_day, self.span_days + 1) for _ in range(visits))
        medications: list[str] = []
        for visit, day in enumerate(days, 1):
            resources += self._encounter(patient_id, hospital, FIRST_DAY + timedelta(days=day),
                                         f"{number:06d}-{visit}", facts, medications)
        last = resources[-1]
        resources.append(self._medication(
            patient_id, None, medications[-1], last["authoredOn"], f"{number:06d}-0",
            status="active", requester=last["requester"]["reference"].split("/")[1]))
        return resources

    def _encounter(self, patient_id: str, home: Hospital, day: date, key: str,
                   facts: PatientFacts | None, medications: list[str]) -> list[dict[str, Any]]:
        rng = self.rng
        hospital = home if rng.random() < 0.85 else rng.choice(HOSPITALS)
        department = rng.choice(self.network.departments[hospital.key])
        doctor = rng.choice(department.doctors)
        kind = rng.choices(("AMB", "IMP", "EMER"), weights=(6, 3, 1))[0]
        start = datetime(day.year, day.month, day.day, tzinfo=CST) + timedelta(
            minutes=rng.randrange(7 * 60 + 30, 17 * 60) if kind == "AMB"
            else rng.randrange(24 * 60))
        if kind == "AMB":
            location, end = department.clinic, start + timedelta(minutes=rng.randrange(10, 60))
            class_display = "ambulatory"
        elif kind == "IMP":
            location, end = department.ward, start + timedelta(days=rng.randrange(2, 15),
                                                               hours=rng.randrange(8))
            class_display = "inpatient encounter"
        else:
            location = f"loc-{hospital.key}-{department.campus}-er"
            end = start + timedelta(hours=rng.randrange(2, 9))
            class_display = "emergency"
        ongoing = end.date() > LAST_DAY
        encounter_id = f"enc-{key}"
        encounter: dict[str, Any] = {
            "resourceType": "Encounter", "id": encounter_id,
            "status": "in-progress" if ongoing else "finished",
            "class": _coding(ACT_CODE, kind, class_display),
            "subject": _ref("Patient", patient_id),
            "participant": [{"individual": _ref("Practitioner", doctor)}],
            "period": {"start": _instant(start)} if ongoing
            else {"start": _instant(start), "end": _instant(end)},
            "location": [{"location": _ref("Location", location),
                          "status": "active" if ongoing else "completed"}],
            "serviceProvider": _ref("Organization", f"org-{hospital.key}"),
        }
        self.sample.encounter_locations[location] += 1
        diagnosis = rng.choice(department.diagnoses) if rng.random() < 0.9 else rng.choice(
            tuple(ICD10_NAMES))
        self.sample.condition_codes[diagnosis] += 1
        condition = {
            "resourceType": "Condition", "id": f"cond-{key}",
            "clinicalStatus": {"coding": [_coding(
                CONDITION_CLINICAL, "active" if ongoing or rng.random() < 0.6 else "resolved")]},
            "verificationStatus": {"coding": [_coding(CONDITION_VERIFICATION, "confirmed")]},
            "category": [{"coding": [_coding(CONDITION_CATEGORY, "encounter-diagnosis",
                                             "Encounter Diagnosis")]}],
            "code": {"coding": [_coding(ICD10, diagnosis, ICD10_NAMES[diagnosis])],
                     "text": ICD10_NAMES[diagnosis]},
            "subject": _ref("Patient", patient_id),
            "encounter": _ref("Encounter", encounter_id),
            "onsetDateTime": _instant(start - timedelta(days=rng.randrange(0, 30))),
            "recordedDate": _instant(start + timedelta(minutes=rng.randrange(5, 90))),
            "recorder": _ref("Practitioner", doctor),
        }
        resources: list[dict[str, Any]] = [encounter, condition]
        if facts is not None:
            facts.conditions.append(diagnosis)
        measured = start + timedelta(minutes=rng.randrange(5, 40))
        labs = rng.sample(LABS, 2)
        for number, measure in enumerate((*VITALS, *labs), 1):
            when = measured if measure.category == "vital-signs" else measured + timedelta(
                minutes=rng.randrange(30, 240))
            resources.append(self._observation(patient_id, encounter_id, measure, when,
                                               f"{key}-{number}", doctor))
            self.sample.observation_days[(measure.code, when.date())] += 1
            if facts is not None:
                facts.observations.append((measure.code, when))
        atc = rng.choice(TREATMENT[diagnosis])
        medications.append(atc)
        resources.append(self._medication(
            patient_id, encounter_id, atc, _instant(start + timedelta(minutes=rng.randrange(
                10, 120))), key, status="active" if ongoing else "completed", requester=doctor))
        return resources

    def _observation(self, patient_id: str, encounter_id: str, measure: Measure,
                     when: datetime, key: str, doctor: str) -> dict[str, Any]:
        value = round(self.rng.uniform(measure.low, measure.high), measure.decimals)
        number: float | int = int(value) if measure.decimals == 0 else value
        category = "Vital Signs" if measure.category == "vital-signs" else "Laboratory"
        return {
            "resourceType": "Observation", "id": f"obs-{key}", "status": "final",
            "category": [{"coding": [_coding(OBS_CATEGORY, measure.category, category)]}],
            "code": {"coding": [_coding(LOINC, measure.code, measure.display)],
                     "text": measure.display},
            "subject": _ref("Patient", patient_id),
            "encounter": _ref("Encounter", encounter_id),
            "effectiveDateTime": _instant(when),
            "issued": _instant(when + timedelta(minutes=20)),
            "performer": [_ref("Practitioner", doctor)],
            "valueQuantity": {"value": number, "unit": measure.unit, "system": UCUM,
                              "code": measure.unit},
        }

    def _medication(self, patient_id: str, encounter_id: str | None, atc: str, authored: str,
                    key: str, *, status: str, requester: str) -> dict[str, Any]:
        name, dosage = MEDICATIONS[atc]
        request: dict[str, Any] = {
            "resourceType": "MedicationRequest", "id": f"med-{key}", "status": status,
            "intent": "order",
            "medicationCodeableConcept": {"coding": [_coding(ATC, atc, name)], "text": name},
            "subject": _ref("Patient", patient_id),
        }
        if encounter_id is not None:
            request["encounter"] = _ref("Encounter", encounter_id)
        request["authoredOn"] = authored
        request["requester"] = _ref("Practitioner", requester)
        request["dosageInstruction"] = [{"text": dosage}]
        return request


def sample_every(patients: int, wanted: int = 1000) -> int:
    """Sample one patient in `every` so that about `wanted` are kept."""
    return max(1, patients // wanted)


def generate(patients: int, *, seed: int = SEED, chunk: int = CHUNK,
             sample: Sample | None = None) -> Iterator[BundleBytes]:
    """The network Bundle, then Bundles of whole patients of about `chunk` entries each."""
    rng = random.Random(seed)
    if sample is None:
        sample = Sample(every=sample_every(patients))
    network = Network(rng)
    for resource in network.resources:
        sample.resources[resource["resourceType"]] += 1
    sample.bundles += 1
    yield _bundle("network", network.resources)
    maker = _PatientMaker(rng, network, sample)
    pending: list[dict[str, Any]] = []
    first = 1
    for number in range(1, patients + 1):
        resources = maker.patient(number)
        for resource in resources:
            sample.resources[resource["resourceType"]] += 1
        pending += resources
        if len(pending) >= chunk or number == patients:
            sample.bundles += 1
            yield _bundle(f"patients-{first:06d}-{number:06d}", pending)
            pending = []
            first = number + 1


def main() -> None:  # python -m bench.search_data N: counts and one Bundle's size
    import sys

    patients = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    sample = Sample(every=sample_every(patients))
    size = 0
    for bundle in generate(patients, sample=sample):
        size += len(bundle.body)
    print(f"{patients:,} patients: {sample.total:,} resources in {sample.bundles:,} bundles, "
          f"{size / 1e6:,.1f} MB; {dict(sample.resources)}")


if __name__ == "__main__":
    main()
