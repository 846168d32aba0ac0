"""Text normalisation for search: case- and accent-insensitive, CJK unchanged."""

from __future__ import annotations

import unicodedata

MAX_INDEXED_LENGTH = 200


def normalize_for_search(value: str) -> str:
    """Casefolded, accents stripped, whitespace collapsed, cut to the indexed length."""
    decomposed = unicodedata.normalize("NFKD", value.casefold())
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.split())[:MAX_INDEXED_LENGTH]
