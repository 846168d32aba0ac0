"""Expected index rows, written the way the query side looks them up."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from yilian.fhir.search.extract import extract_index_rows
from yilian.kit.hashing import hash64

UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def span(param: str, low: datetime, high: datetime) -> dict[str, Any]:
    """A date row."""
    return {"param": param, "low": low, "high": high}


def token(
    res_type: str,
    param: str,
    system: str | None,
    code: str | None,
    text: str | None = None,
    type_system: str | None = None,
    type_code: str | None = None,
) -> dict[str, Any]:
    """A token row as the query side looks it up (hashes from yilian.kit.hashing)."""
    return {
        "param": param,
        "system": system,
        "code": code,
        "text": text,
        "type_system": type_system,
        "type_code": type_code,
        "hash_code": hash64(res_type, param, code),
        "hash_sys": hash64(res_type, param, system),
    }


def string(param: str, norm: str, exact: str) -> dict[str, Any]:
    return {"param": param, "value_norm": norm, "value_exact": exact}


def ref(
    param: str, target_type: str | None, target_id: str | None, url: str | None = None
) -> dict[str, Any]:
    return {
        "param": param,
        "target_type": target_type,
        "target_id": target_id,
        "target_version": None,
        "url": url,
    }


def as_dict(row: Any) -> dict[str, Any]:
    """An index row (a named tuple) as a dict, without `grp` unless a composite's."""
    return {key: value for key, value in row._asdict().items()
            if key != "grp" or value is not None}


def rows(resource: dict[str, Any], table: str, param: str, *, local_base: str | None = None
         ) -> list[dict[str, Any]]:
    return [as_dict(row) for row in extract_index_rows(resource, local_base=local_base)[table]
            if row.param == param]


def _key(row: dict[str, Any]) -> str:
    return repr(sorted(row.items()))


def assert_rows(actual: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    assert sorted(actual, key=_key) == sorted(expected, key=_key)


def of_element(group: int, *expected: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of a composite's component, from the element with ordinal `group`."""
    return [{**row, "grp": group} for row in expected]
