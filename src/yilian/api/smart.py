"""SMART on FHIR discovery (`/.well-known/smart-configuration`, always public), and the
warning a server gives every time it starts with access control off."""

from __future__ import annotations

import logging
import sys
from typing import Any

from yilian.auth.roles import CEILINGS

log = logging.getLogger("yilian.auth")

_WARNING = ("ACCESS CONTROL IS OFF (YILIAN_AUTH=off): anyone who reaches this server can "
            "read and change every record. Never run it like this with real patients' data.")


def smart_metadata(fhir_base: str) -> dict[str, Any]:
    """What SMART clients read first. Tokens are issued by `yilian token issue` (on the
    machine that holds the database) until the sign-in endpoints are served."""
    scopes = sorted({scope for ceiling in CEILINGS.values() for scope in ceiling.split()})
    return {
        "issuer": fhir_base,
        "capabilities": ["permission-v1", "permission-v2", "context-standalone-patient"],
        "scopes_supported": scopes,
        "grant_types_supported": [],
        "token_endpoint_auth_methods_supported": [],
        "code_challenge_methods_supported": ["S256"],
    }


def warn_auth_off() -> None:
    banner = "!" * 78
    print(f"{banner}\n{_WARNING}\n{banner}", file=sys.stderr, flush=True)
    log.warning(_WARNING)
