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


_SMALL_NUMBER = re.compile(r"[0-9]{1,9}")


def small_number(value: str) -> int | None:
    """A whole number written in ASCII digits that fits any integer column, else None.
    (str.isdigit accepts '²' and other digits int() refuses, and unbounded numbers overflow
    SQLite's integers.)"""
    return int(value) if _SMALL_NUMBER.fullmatch(value) else None
