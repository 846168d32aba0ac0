"""Stable 64-bit hashes: the same in every process and on every database."""

from __future__ import annotations

import hashlib


def hash64(*parts: str | None) -> int:
    """A signed 64-bit integer of the parts (None and "" are distinct), fit for a BIGINT."""
    digest = hashlib.blake2b(digest_size=8)
    for part in parts:
        if part is None:
            digest.update(b"\x00")
        else:
            digest.update(b"\x01")
            digest.update(part.encode("utf-8"))
        digest.update(b"\x1f")
    return int.from_bytes(digest.digest(), "big", signed=True)
