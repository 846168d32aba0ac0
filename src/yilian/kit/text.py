"""Text normalisation for search: case- and accent-insensitive, CJK unchanged."""

from __future__ import annotations

import unicodedata

MAX_INDEXED_LENGTH = 200


def _is_accent(char: str) -> bool:
    # Only the Latin combining diacritics (U+0300–U+036F): é → e, ü → u. Other combining
    # marks carry meaning (Japanese voicing が ≠ か, Indic vowel signs) and are kept.
    return "\u0300" <= char <= "\u036f"


def normalize_for_search(value: str) -> str:
    """Casefolded, Latin accents stripped, whitespace collapsed, cut to the indexed length."""
    decomposed = unicodedata.normalize("NFKD", value.casefold())
    stripped = "".join(ch for ch in decomposed if not _is_accent(ch))
    return " ".join(unicodedata.normalize("NFC", stripped).split())[:MAX_INDEXED_LENGTH]
