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


# Written out in text (a narrative, a note): an ID number, a mainland mobile number.
_ID_IN_TEXT = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
_MOBILE_IN_TEXT = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
# What masking leaves: a write carrying it would store the mask over the real value.
_MASKS = re.compile(r"\d{4}\*{10}[\dXx]{4}|\d{3}\*{4}\d{4}")
# Search parameters that would confirm a guessed number.
IDENTIFYING_PARAMETERS = frozenset({"identifier", "phone", "telecom"})


def _mask_text(text: str) -> str:
    text = _ID_IN_TEXT.sub(lambda m: mask_resident_id(m[0]) if is_resident_id(m[0]) else m[0],
                           text)
    return _MOBILE_IN_TEXT.sub(lambda m: mask_phone(m[0]), text)


def carries_masks(value: Any) -> bool:
    """Whether a JSON value holds masked numbers (as read by a masked caller)."""
    if isinstance(value, str):
        return _MASKS.search(value) is not None
    if isinstance(value, list):
        return any(carries_masks(item) for item in value)
    if isinstance(value, dict):
        return any(carries_masks(item) for item in value.values())
    return False


def masked(value: Any) -> Any:
    """A copy of a JSON value (a resource, a Bundle) with ID and phone numbers masked: in
    identifiers and telecoms, and wherever text spells them out (a narrative, a note)."""
    if isinstance(value, str):
        return _mask_text(value)
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
