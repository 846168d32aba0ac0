"""The demo network as FHIR resources: a university medical centre, its directly affiliated,
non-directly affiliated and cooperating hospitals, one group of 10 campuses and 6,000+ beds,
community health centres with family-doctor teams; departments, wards, rooms, beds and the
practitioners who work there.

Modeled on Zhejiang's academic networks; every name is invented. Ids are deterministic
(`h1`, `h1-c03`, `bed-h1-c03-w02-05-2`), so seeding twice yields the same resources.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

from yilian.demo.people import Person, people
from yilian.domains.inpatient.codes import BedStatus
from yilian.domains.network.codes import (
    CLINICAL_SPECIALTY,
    PRACTITIONER_LICENCE,
    PRACTITIONER_ROLE,
    USCC,
    WARD_RESTRICTION,
    Affiliation,
    Grade,
    OrganizationKind,
    PhysicalType,
    concept,
    organization_types,
    physical_type,
    uscc_check,
)

JsonObject = dict[str, Any]
ROOM_BEDS = 3  # the usual ward room in China holds three beds
WARDS_PER_BUILDING = 12


@dataclass(frozen=True, slots=True)
class Specialty:
    key: str
    code: str
    zh: str
    en: str
    sex: str | None
    min_age: int | None
    max_age: int | None
    beds_per_ward: int


@cache
def specialties() -> dict[str, Specialty]:
    data = json.loads(resources.files("yilian.demo").joinpath("data/specialties.json")
                      .read_text(encoding="utf-8"))
    return {key: Specialty(key, item["code"], item["zh"], item["en"], item.get("sex"),
                           item.get("min_age"), item.get("max_age"),
                           int(item.get("beds_per_ward", 40)))
            for key, item in data["specialties"].items()}


@dataclass(frozen=True, slots=True)
class CampusSpec:
    key: str
    zh: str
    district: str  # where it stands, for the address
    beds: int


@dataclass(frozen=True, slots=True)
class HospitalSpec:
    key: str
    zh: str
    en: str
    affiliation: Affiliation
    grade: Grade
    campuses: tuple[CampusSpec, ...]
    departments: tuple[str, ...]  # specialty keys


_GENERAL = ("cardiology", "respiratory", "gastroenterology", "neurology", "hematology",
            "nephrology", "endocrinology", "oncology", "general_surgery", "orthopedics",
            "neurosurgery", "urology", "cardiothoracic_surgery", "gynecology", "obstetrics",
            "pediatrics", "ophthalmology", "otolaryngology", "icu", "rehabilitation",
            "infectious_disease", "geriatrics")
_COUNTY = ("cardiology", "respiratory", "gastroenterology", "neurology", "general_surgery",
           "orthopedics", "obstetrics", "gynecology", "pediatrics", "icu", "geriatrics")


def _campuses(hospital: str, *items: tuple[str, str, int]) -> tuple[CampusSpec, ...]:
    return tuple(CampusSpec(f"{hospital}-c{n:02d}", zh, district, beds)
                 for n, (zh, district, beds) in enumerate(items, start=1))


CENTRE = ("之江大学医学中心", "Zhijiang University Medical Centre")

HOSPITALS: tuple[HospitalSpec, ...] = (
    HospitalSpec("h1", "之江大学医学院附属第一医院", "First Affiliated Hospital",
                 Affiliation.DIRECT, Grade.L3A, _campuses(
                     "h1", ("庆春院区", "上城区", 1100), ("之江院区", "西湖区", 900),
                     ("余杭院区", "余杭区", 1000), ("城站院区", "上城区", 420),
                     ("大学路院区", "上城区", 380), ("钱塘院区", "钱塘区", 560),
                     ("萧山院区", "萧山区", 600), ("临平院区", "临平区", 420),
                     ("滨江院区", "滨江区", 500), ("富阳院区", "富阳区", 360)),
                 _GENERAL),
    HospitalSpec("h2", "之江大学医学院附属第二医院", "Second Affiliated Hospital",
                 Affiliation.DIRECT, Grade.L3A,
                 _campuses("h2", ("解放路院区", "上城区", 300), ("滨江院区", "滨江区", 260)),
                 _GENERAL),
    HospitalSpec("h3", "之江大学医学院附属妇产科医院", "Women's Hospital",
                 Affiliation.DIRECT, Grade.L3A, _campuses("h3", ("学士路院区", "上城区", 160)),
                 ("gynecology", "obstetrics", "icu")),
    HospitalSpec("h4", "之江大学医学院附属儿童医院", "Children's Hospital",
                 Affiliation.DIRECT, Grade.L3A, _campuses("h4", ("滨江院区", "滨江区", 160)),
                 ("pediatrics", "icu")),
    HospitalSpec("h5", "之江大学医学院附属第四医院", "Fourth Affiliated Hospital",
                 Affiliation.DIRECT, Grade.L3A, _campuses("h5", ("义乌院区", "义乌市", 200)),
                 _COUNTY),
    HospitalSpec("h6", "之江大学医学院附属邵氏医院", "Shao's Affiliated Hospital",
                 Affiliation.DIRECT, Grade.L3A, _campuses("h6", ("庆春东院区", "上城区", 200)),
                 _COUNTY),
    HospitalSpec("h7", "之江大学医学院附属精神卫生中心", "Affiliated Mental Health Centre",
                 Affiliation.DIRECT, Grade.L3A, _campuses("h7", ("天目山院区", "西湖区", 80)),
                 ("neurology", "geriatrics")),
    HospitalSpec("h8", "杭州市钱江医院", "Hangzhou Qianjiang Hospital",
                 Affiliation.NON_DIRECT, Grade.L3A, _campuses("h8", ("钱江院区", "上城区", 120)),
                 _COUNTY),
    HospitalSpec("h9", "湖州市南太湖医院", "Huzhou South Taihu Hospital",
                 Affiliation.NON_DIRECT, Grade.L3B, _campuses("h9", ("吴兴院区", "吴兴区", 120)),
                 _COUNTY),
    *(HospitalSpec(f"h{10 + n}", zh, en, Affiliation.COOPERATING, grade,
                   _campuses(f"h{10 + n}", (campus, district, 80)), _COUNTY)
      for n, (zh, en, grade, campus, district) in enumerate((
          ("桐庐县第一人民医院", "Tonglu First People's Hospital", Grade.L2A, "本院", "桐庐县"),
          ("淳安县第一人民医院", "Chun'an First People's Hospital", Grade.L2A, "本院", "淳安县"),
          ("建德市第一人民医院", "Jiande First People's Hospital", Grade.L2A, "本院", "建德市"),
          ("临安区人民医院", "Lin'an People's Hospital", Grade.L3B, "本院", "临安区"),
          ("德清县人民医院", "Deqing People's Hospital", Grade.L2A, "本院", "德清县"),
          ("安吉县人民医院", "Anji People's Hospital", Grade.L2A, "本院", "安吉县"),
          ("龙泉市人民医院", "Longquan People's Hospital", Grade.L2A, "本院", "龙泉市"),
          ("开化县人民医院", "Kaihua People's Hospital", Grade.L2B, "本院", "开化县"),
      ))),
)

COMMUNITY_CENTRES: tuple[tuple[str, str], ...] = (
    ("湖滨街道社区卫生服务中心", "上城区"), ("小营街道社区卫生服务中心", "上城区"),
    ("西溪街道社区卫生服务中心", "西湖区"), ("翠苑街道社区卫生服务中心", "西湖区"),
    ("长河街道社区卫生服务中心", "滨江区"), ("闲林街道社区卫生服务中心", "余杭区"),
    ("北干街道社区卫生服务中心", "萧山区"), ("下沙街道社区卫生服务中心", "钱塘区"),
)
TEAMS_PER_CENTRE = 3


@dataclass(frozen=True, slots=True)
class Bed:
    id: str
    ward_id: str
    campus_id: str
    hospital_id: str
    department_id: str
    specialty: str


@dataclass
class Network:
    """The resources, and the indexes the stay generator needs."""

    resources: list[JsonObject] = field(default_factory=list)
    beds: list[Bed] = field(default_factory=list)
    doctors: dict[str, list[str]] = field(default_factory=dict)  # department id → ids
    hospitals: list[str] = field(default_factory=list)
    community_centres: list[str] = field(default_factory=list)
    practitioners: int = 0

    def add(self, resource: JsonObject) -> JsonObject:
        self.resources.append(resource)
        return resource


def build_network(*, scale: float = 1.0, seed: int = 2026,
                  hospitals: tuple[HospitalSpec, ...] = HOSPITALS) -> Network:
    """The whole network; `scale` multiplies every campus's beds (0.05 for a small test)."""
    rng = random.Random(seed)
    # Staff ages are drawn like patients'; a practitioner's birth date matters little here.
    staff = people(200_000, seed=seed + 1, today=date(2026, 1, 1))
    network = Network()
    centre = network.add(_organization("centre", CENTRE[0], CENTRE[1],
                                       OrganizationKind.MEDICAL_CENTRE, rng))
    for spec in hospitals:
        _hospital(network, spec, centre["id"], scale, rng, staff)
    for n, (name, district) in enumerate(COMMUNITY_CENTRES, start=1):
        chc = network.add(_organization(f"chc{n}", name, None,
                                        OrganizationKind.COMMUNITY_CENTRE, rng,
                                        district=district))
        network.community_centres.append(chc["id"])
        for team in range(1, TEAMS_PER_CENTRE + 1):
            network.add(_organization(f"chc{n}-t{team}", f"{name[:-8]}家庭医生第{team}团队",
                                      None, OrganizationKind.FAMILY_DOCTOR_TEAM, rng,
                                      part_of=chc["id"]))
    return network


def _hospital(network: Network, spec: HospitalSpec, centre_id: str, scale: float,
              rng: random.Random, staff: Iterator[Person]) -> None:
    hospital = network.add(_organization(spec.key, spec.zh, spec.en, OrganizationKind.HOSPITAL,
                                         rng, part_of=centre_id, affiliation=spec.affiliation,
                                         grade=spec.grade, district=spec.campuses[0].district))
    network.hospitals.append(hospital["id"])
    known = specialties()
    departments = {}
    for key in spec.departments:
        specialty = known[key]
        department_id = f"{spec.key}-{key.replace('_', '-')}"
        departments[key] = department_id
        doctors = [_practitioner(network, next(staff), spec.key, department_id, specialty,
                                 "doctor") for _ in range(rng.randint(4, 9))]
        for _ in range(rng.randint(6, 12)):
            _practitioner(network, next(staff), spec.key, department_id, specialty, "nurse")
        network.doctors[department_id] = doctors
    ward_locations: dict[str, list[str]] = {key: [] for key in spec.departments}
    for campus in spec.campuses:
        _campus(network, spec, campus, departments, ward_locations, scale, rng)
    for key, department_id in departments.items():
        specialty = known[key]
        department: JsonObject = {
            "resourceType": "HealthcareService", "id": department_id, "active": True,
            "providedBy": {"reference": f"Organization/{spec.key}", "display": spec.zh},
            "category": [concept("http://terminology.hl7.org/CodeSystem/service-category",
                                 "35", "住院", "Hospital")],
            "specialty": [concept(CLINICAL_SPECIALTY, specialty.code, specialty.zh,
                                  specialty.en)],
            "name": specialty.zh, "comment": specialty.en,
        }
        if ward_locations[key]:  # a small campus may have no ward of this department
            department["location"] = [{"reference": f"Location/{ward}"}
                                      for ward in ward_locations[key]]
        network.add(department)


def _campus(network: Network, spec: HospitalSpec, campus: CampusSpec,
            departments: dict[str, str], ward_locations: dict[str, list[str]], scale: float,
            rng: random.Random) -> None:
    org = network.add(_organization(campus.key, f"{spec.zh}{campus.zh}", None,
                                    OrganizationKind.CAMPUS, rng, part_of=spec.key,
                                    district=campus.district))
    site_id = f"site-{campus.key}"
    network.add(_location(site_id, f"{spec.zh}{campus.zh}", PhysicalType.SITE, org["id"], None,
                          address=_address(campus.district, rng)))
    # Beds shared among the departments, a ward (of the department's usual size) at a time.
    known = specialties()
    target = max(1, round(campus.beds * scale))
    keys = list(departments)
    weights = [2.0 if k in ("general_surgery", "orthopedics", "cardiology", "oncology")
               else 1.0 for k in keys]
    wards: list[tuple[str, int]] = []
    total = 0
    while total < target:
        key = rng.choices(keys, weights)[0]
        size = min(known[key].beds_per_ward, max(ROOM_BEDS, target - total))
        wards.append((key, size))
        total += size
    building_id = ""
    wards.sort()
    seen: dict[str, int] = {}
    for index, (key, size) in enumerate(wards, start=1):
        if (index - 1) % WARDS_PER_BUILDING == 0:
            number = (index - 1) // WARDS_PER_BUILDING + 1
            building_id = f"bu-{campus.key}-{number}"
            network.add(_location(building_id, f"{number}号楼", PhysicalType.BUILDING,
                                  org["id"], site_id))
        specialty = known[key]
        seen[key] = ordinal = seen.get(key, 0) + 1  # 一病区, 二病区 ... of this department
        ward_id = f"wa-{campus.key}-{index:02d}"
        ward = _location(ward_id, f"{specialty.zh}{_ordinal(ordinal)}病区", PhysicalType.WARD,
                         org["id"], building_id)
        ward["extension"] = [_restriction(specialty, departments[key])]
        network.add(ward)
        ward_locations[key].append(ward_id)
        for room in range(1, (size + ROOM_BEDS - 1) // ROOM_BEDS + 1):
            room_id = f"ro-{campus.key}-{index:02d}-{room:02d}"
            network.add(_location(room_id, f"{room:02d}室", PhysicalType.ROOM, org["id"],
                                  ward_id))
            for place in range(1, ROOM_BEDS + 1):
                number = (room - 1) * ROOM_BEDS + place
                if number > size:
                    break
                bed_id = f"bd-{campus.key}-{index:02d}-{number:02d}"
                network.add(_location(bed_id, f"{number:02d}床", PhysicalType.BED, org["id"],
                                      room_id))
                network.beds.append(Bed(bed_id, ward_id, org["id"], spec.key,
                                        departments[key], key))


def _restriction(specialty: Specialty, department_id: str) -> JsonObject:
    """The ward takes its department's patients, and its specialty's sex and ages."""
    details: list[JsonObject] = [{"url": "department", "valueReference": {
        "reference": f"HealthcareService/{department_id}"}}]
    if specialty.sex:
        details.append({"url": "sex", "valueCode": specialty.sex})
    if specialty.min_age is not None:
        details.append({"url": "minAge", "valueInteger": specialty.min_age})
    if specialty.max_age is not None:
        details.append({"url": "maxAge", "valueInteger": specialty.max_age})
    return {"url": WARD_RESTRICTION, "extension": details}


def _ordinal(n: int) -> str:
    return "一二三四五六七八九十"[n - 1] if n <= 10 else str(n)


def _location(res_id: str, name: str, kind: PhysicalType, campus_id: str, part_of: str | None,
              *, address: JsonObject | None = None) -> JsonObject:
    location: JsonObject = {
        "resourceType": "Location", "id": res_id, "status": "active", "name": name,
        "mode": "instance", "physicalType": physical_type(kind),
        "managingOrganization": {"reference": f"Organization/{campus_id}"},
    }
    if kind is PhysicalType.BED:
        location["operationalStatus"] = BedStatus.FREE.coding()
    if address is not None:
        location["address"] = address
    if part_of is not None:
        location["partOf"] = {"reference": f"Location/{part_of}"}
    return location


def _address(district: str, rng: random.Random) -> JsonObject:
    return {"use": "work", "text": f"浙江省{district}{rng.randint(1, 999)}号",
            "district": district, "state": "浙江省", "country": "CN"}


def _organization(res_id: str, zh: str, en: str | None, kind: OrganizationKind,
                  rng: random.Random, *, part_of: str | None = None,
                  affiliation: Affiliation | None = None, grade: Grade | None = None,
                  district: str | None = None) -> JsonObject:
    # 统一社会信用代码 of a public institution (事业单位: 12) in Zhejiang (33xxxx).
    first17 = "1233" + f"{rng.randint(0, 9999):04d}" + "".join(
        rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(9))
    organization: JsonObject = {
        "resourceType": "Organization", "id": res_id, "active": True,
        "identifier": [{"system": USCC, "value": first17 + uscc_check(first17)}],
        "type": organization_types(kind, affiliation=affiliation, grade=grade),
        "name": zh,
    }
    if en:
        organization["alias"] = [en]
    if district:
        organization["address"] = [_address(district, rng)]
    if part_of:
        organization["partOf"] = {"reference": f"Organization/{part_of}"}
    return organization


def _practitioner(network: Network, person: Person, hospital: str, department_id: str,
                  specialty: Specialty, role: str) -> str:
    network.practitioners += 1
    res_id = f"pr-{network.practitioners}"
    network.add({
        "resourceType": "Practitioner", "id": res_id, "active": True,
        "identifier": [{"system": PRACTITIONER_LICENCE,
                        "value": f"1{person.address_code}{network.practitioners:08d}"}],
        "name": [{"use": "official", "text": person.family + person.given,
                  "family": person.family, "given": [person.given]},
                 {"use": "usual", "family": person.family_pinyin,
                  "given": [person.given_pinyin]}],
        "gender": person.gender, "birthDate": person.birth_date.isoformat(),
    })
    title = {"doctor": ("医师", "Doctor"), "nurse": ("护士", "Nurse")}[role]
    network.add({
        "resourceType": "PractitionerRole", "id": f"{res_id}-role", "active": True,
        "practitioner": {"reference": f"Practitioner/{res_id}"},
        "organization": {"reference": f"Organization/{hospital}"},
        "healthcareService": [{"reference": f"HealthcareService/{department_id}"}],
        "code": [concept(PRACTITIONER_ROLE, role, title[0], title[1])],
        "specialty": [concept(CLINICAL_SPECIALTY, specialty.code, specialty.zh, specialty.en)],
    })
    return res_id

