"""Masking of resident ID numbers and phone numbers for callers whose roles do not need them
(researchers, managers, the laboratory, the biobank, trainees: fhir.access.Access.masked).

    330106199001011234  →  3301**********1234      (GB 11643: 18 characters, checked)
    13812345678         →  138****5678             (any telecom of system phone or sms)

An identifier is masked by its value's form, whatever its system: hospitals send resident ID
numbers under several OIDs, and an ID number is one wherever it is written.
"""

from __future__ import annotations

import re
from typing import Any

from yilian.fhir.messages import FhirResponse
from yilian.kit import jsonfmt

_RESIDENT_ID = re.compile(r"\d{17}[\dXx]")
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_PHONE_SYSTEMS = frozenset({"phone", "sms"})


def is_resident_id(value: str) -> bool:
    """An 18-character resident identity number with a valid check character."""
    if not _RESIDENT_ID.fullmatch(value):
        return False
    total = sum(int(digit) * weight for digit, weight in zip(value[:17], _WEIGHTS, strict=True))
    return _CHECK[total % 11] == value[17].upper()


def mask_resident_id(value: str) -> str:
    return value[:4] + "*" * 10 + value[14:]


def mask_phone(value: str) -> str:
    digits = [i for i, char in enumerate(value) if char.isdigit()]
    if len(digits) < 7:
        return "*" * len(value)
    hidden = set(digits[3:-4])
    return "".join("*" if i in hidden else char for i, char in enumerate(value))


def masked(value: Any) -> Any:
    """A copy of a JSON value (a resource, a Bundle) with ID and phone numbers masked."""
    if isinstance(value, list):
        return [masked(item) for item in value]
    if not isinstance(value, dict):
        return value
    copy = {key: masked(item) for key, item in value.items()}
    for identifier in _dicts(copy.get("identifier")):
        text = identifier.get("value")
        if isinstance(text, str) and is_resident_id(text):
            identifier["value"] = mask_resident_id(text)
    for contact in _dicts(copy.get("telecom")):
        text = contact.get("value")
        if isinstance(text, str) and contact.get("system") in _PHONE_SYSTEMS:
            contact["value"] = mask_phone(text)
    return copy


def _dicts(value: Any) -> list[dict[str, Any]]:
    items = value if isinstance(value, list) else [value]
    return [item for item in items if isinstance(item, dict)]


def masked_response(response: FhirResponse) -> FhirResponse:
    """The response with its body masked (headers and status kept)."""
    raw = response.body_bytes()  # whole: a search's entries are stored bytes (Fragments)
    if raw is None:
        return response
    return FhirResponse(response.status, resource=masked(jsonfmt.loads(raw)),
                        headers=response.headers, stored=response.stored,
                        audited=response.audited)
