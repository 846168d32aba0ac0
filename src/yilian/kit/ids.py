"""Identifiers the server assigns."""

from __future__ import annotations

import re
import uuid

# FHIR id: [A-Za-z0-9\-\.]{1,64}
ID_PATTERN = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def new_id() -> str:
    return str(uuid.uuid4())


def is_valid_id(value: str) -> bool:
    return ID_PATTERN.fullmatch(value) is not None
