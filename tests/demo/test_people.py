"""The demo residents and the demo code tables."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from datetime import date
from importlib import resources
from typing import Any

import pytest

from yilian.demo.people import (
    INSURANCE_SCHEMES,
    Person,
    is_valid_resident_id,
    people,
    resident_id,
)

TODAY = date(2025, 6, 1)
EXAMPLE = "11010519491231002X"  # identity.md
CJK = re.compile(r"[\u4e00-\u9fff]+")


def check_char(body: str) -> str:
    """GB 11643's check character, written out again so the module is not checked
    against itself."""
    weights = [2 ** (17 - i) % 11 for i in range(17)]  # 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2
    total = sum(int(digit) * weight for digit, weight in zip(body, weights, strict=True))
    return "10X98765432"[total % 11]


def age(person: Person) -> int:
    born = person.birth_date
    return TODAY.year - born.year - ((TODAY.month, TODAY.day) < (born.month, born.day))


@pytest.fixture(scope="module")
def crowd() -> list[Person]:
    return list(people(20_000, seed=2025, today=TODAY))


# --- Resident ids -----------------------------------------------------------------------


def test_the_example_number_is_valid_and_rebuilt() -> None:
    assert check_char(EXAMPLE[:17]) == "X"
    assert is_valid_resident_id(EXAMPLE)
    assert resident_id("110105", date(1949, 12, 31), 2) == EXAMPLE


def test_every_one_character_change_is_rejected() -> None:
    for position in range(18):
        for replacement in "0123456789X":
            if replacement != EXAMPLE[position]:
                changed = EXAMPLE[:position] + replacement + EXAMPLE[position + 1 :]
                assert not is_valid_resident_id(changed), changed


@pytest.mark.parametrize(
    "value",
    [
        EXAMPLE[:17],  # too short
        EXAMPLE + "0",  # too long
        EXAMPLE[:17] + "x",  # the check character is upper case
        "1101051949123A002X",  # a letter in the body
        "110105194902300020"[:17] + check_char("11010519490230002"),  # 30 February
        "110105194913010020"[:17] + check_char("11010519491301002"),  # month 13
    ],
)
def test_malformed_numbers_are_rejected(value: str) -> None:
    assert not is_valid_resident_id(value)


@pytest.mark.parametrize(("code", "sequence"), [("11010", 2), ("1101051", 2), ("110105", 1000)])
def test_resident_id_refuses_bad_parts(code: str, sequence: int) -> None:
    with pytest.raises(ValueError):
        resident_id(code, date(1949, 12, 31), sequence)


def test_resident_ids_agree_with_the_person(crowd: list[Person]) -> None:
    for person in crowd:
        number = person.resident_id
        assert is_valid_resident_id(number), person
        assert number[17] == check_char(number[:17]), person
        assert number[:6] == person.address_code, person
        assert number[6:14] == person.birth_date.strftime("%Y%m%d"), person
        sequence = int(number[14:17])
        assert sequence > 0
        assert (sequence % 2 == 1) == (person.gender == "male"), person


def test_resident_ids_are_unique(crowd: list[Person]) -> None:
    assert len({person.resident_id for person in crowd}) == len(crowd)


# --- Determinism and speed --------------------------------------------------------------


def test_the_same_seed_gives_the_same_people() -> None:
    assert list(people(300, seed=7, today=TODAY)) == list(people(300, seed=7, today=TODAY))


def test_another_seed_gives_other_people() -> None:
    one = list(people(300, seed=7, today=TODAY))
    other = list(people(300, seed=8, today=TODAY))
    assert len({p.resident_id for p in one} & {p.resident_id for p in other}) < 5


def test_a_prefix_of_a_run_is_a_shorter_run() -> None:
    # A caller that takes the first n people of a long run gets what people(n) gives.
    assert list(people(50, seed=3, today=TODAY)) == list(people(500, seed=3, today=TODAY))[:50]


def test_twenty_thousand_people_come_quickly() -> None:
    # About 0.3 s on the development machine; the bound only catches gross regressions.
    started = time.perf_counter()
    count = sum(1 for _ in people(20_000, seed=1, today=TODAY))
    assert count == 20_000
    assert time.perf_counter() - started < 5


# --- Plausible distributions ------------------------------------------------------------


def share(crowd: list[Person], condition: Any) -> float:
    return sum(1 for person in crowd if condition(person)) / len(crowd)


def test_most_live_in_zhejiang_and_hangzhou_leads(crowd: list[Person]) -> None:
    assert 0.8 <= share(crowd, lambda p: p.province == "浙江省") <= 0.9
    assert 0.45 <= share(crowd, lambda p: p.city == "杭州市") <= 0.57
    cities = Counter(person.city for person in crowd)
    assert cities.most_common(1)[0][0] == "杭州市"
    for person in crowd:
        assert (person.province == "浙江省") == person.address_code.startswith("33"), person


def test_ages_suit_a_hospital(crowd: list[Person]) -> None:
    assert 0.2 <= share(crowd, lambda p: age(p) >= 65) <= 0.36
    assert 0.08 <= share(crowd, lambda p: age(p) < 15) <= 0.16
    assert all(0 <= age(person) <= 100 for person in crowd)
    assert all(person.birth_date <= TODAY for person in crowd)


def test_both_sexes_are_about_half(crowd: list[Person]) -> None:
    assert 0.45 <= share(crowd, lambda p: p.gender == "male") <= 0.55
    assert 0.45 <= share(crowd, lambda p: p.gender == "female") <= 0.55


def test_surnames_follow_the_common_ones(crowd: list[Person]) -> None:
    top = [name for name, _ in Counter(p.family for p in crowd).most_common(5)]
    assert set(top) <= {"王", "李", "张", "刘", "陈", "杨"}
    assert any(len(person.family) == 2 for person in crowd)  # 欧阳, 司马 ...


def test_insurance_is_basic_scheme_or_self_pay(crowd: list[Person]) -> None:
    assert 0.03 <= share(crowd, lambda p: p.insurance is None) <= 0.07
    insured = [person for person in crowd if person.insurance is not None]
    codes = Counter(person.insurance.insutype for person in insured if person.insurance)
    assert set(codes) == {"310", "390"}
    assert 0.35 <= codes["310"] / len(insured) <= 0.65
    for person in insured:
        assert person.insurance is not None
        plan = person.insurance
        assert (plan.display_zh, plan.display_en) == INSURANCE_SCHEMES[plan.insutype]
        assert re.fullmatch(r"[A-Z][0-9]{8}", plan.card_number), plan
        if age(person) < 18:
            assert plan.insutype == "390", person
    cards = [p.insurance.card_number for p in insured if p.insurance]
    assert len(set(cards)) == len(cards)


def test_insurance_schemes_cover_identity_md() -> None:
    assert set(INSURANCE_SCHEMES) == {"310", "320", "330", "390", "392", "410", "510"}
    for zh, en in INSURANCE_SCHEMES.values():
        assert CJK.fullmatch(zh) and en.isascii()


# --- Names, phones, addresses -----------------------------------------------------------


def test_names_are_chinese_and_pinyin_is_ascii(crowd: list[Person]) -> None:
    for person in crowd:
        assert CJK.fullmatch(person.family) and 1 <= len(person.family) <= 2, person
        assert CJK.fullmatch(person.given) and 1 <= len(person.given) <= 2, person
        assert person.text == person.family + person.given
        for pinyin in (person.family_pinyin, person.given_pinyin):
            assert re.fullmatch(r"[A-Z][a-z]*", pinyin), person
    assert 0.65 <= share(crowd, lambda p: len(p.given) == 2) <= 0.75


def test_given_names_lean_by_sex(crowd: list[Person]) -> None:
    male = Counter(ch for p in crowd if p.gender == "male" for ch in p.given)
    female = Counter(ch for p in crowd if p.gender == "female" for ch in p.given)
    assert male["伟"] > 10 * female["伟"]
    assert female["芳"] > 10 * male["芳"]


def test_phones_are_mainland_mobiles(crowd: list[Person]) -> None:
    for person in crowd:
        assert re.fullmatch(r"1[35789][0-9]{9}", person.phone), person
    assert len({person.phone for person in crowd}) > 0.99 * len(crowd)


def test_addresses_are_complete_and_varied(crowd: list[Person]) -> None:
    for person in crowd:
        assert re.fullmatch(r"[0-9]{6}", person.address_code)
        assert person.province.endswith(("省", "市"))
        assert person.city.endswith("市")
        assert person.district.endswith(("区", "县", "市"))
        assert CJK.search(person.line) and re.search(r"[0-9]+(号|室)$", person.line), person
    assert len({person.line for person in crowd}) > 0.95 * len(crowd)
    assert len({person.address_code for person in crowd}) > 60


# --- The code tables --------------------------------------------------------------------


def load(name: str) -> dict[str, Any]:
    # The diagnoses are the inpatient domain's (its pages offer them); the rest the demo's.
    package = "yilian.domains.inpatient" if name == "diagnoses.json" else "yilian.demo"
    text = resources.files(package).joinpath(f"data/{name}").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def test_diagnoses_are_icd10_codes_with_titles() -> None:
    data = load("diagnoses.json")
    assert data["system"] == "http://hl7.org/fhir/sid/icd-10"
    assert "unverified" in data["note"]
    codes = []
    for key, diagnoses in data["specialties"].items():
        assert 6 <= len(diagnoses) <= 12, key
        for item in diagnoses:
            assert re.fullmatch(r"[A-Z][0-9]{2}(\.[0-9])?", item["code"]), item
            assert CJK.search(item["zh"]) and item["en"].strip(), item
            assert isinstance(item["los_days"], int) and 1 <= item["los_days"] <= 60, item
            assert item.get("sex") in (None, "male", "female"), item
            codes.append(item["code"])
    assert len(codes) == len(set(codes))


def test_specialties_match_the_diagnoses() -> None:
    diagnoses = load("diagnoses.json")["specialties"]
    data = load("specialties.json")
    specialties = data["specialties"]
    assert data["system"] == "http://yilian.example.org/fhir/CodeSystem/clinical-specialty"
    assert "unverified" in data["note"].lower()
    assert set(specialties) == set(diagnoses)
    assert len(specialties) == 22
    for key, item in specialties.items():
        assert re.fullmatch(r"[0-9]{2}(\.[0-9]{2})?", item["code"]), key
        assert CJK.fullmatch(item["zh"]) and item["en"].isascii(), key
        assert 30 <= item["beds_per_ward"] <= 50, key
        # A diagnosis of one sex never lands in a ward kept for the other.
        if item["sex"] is not None:
            assert all(d.get("sex", item["sex"]) == item["sex"] for d in diagnoses[key]), key
    assert specialties["obstetrics"]["sex"] == specialties["gynecology"]["sex"] == "female"
    assert specialties["pediatrics"]["max_age"] == 14
    assert specialties["cardiology"]["code"] == "03.04"
    assert specialties["icu"]["code"] == "28"
