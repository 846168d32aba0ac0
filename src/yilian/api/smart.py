"""SMART on FHIR discovery (`/.well-known/smart-configuration`, always public), and the
warning a server gives every time it starts with access control off."""

from __future__ import annotations

import logging
import sys
from typing import Any

from yilian.auth.oauth import SIGN_IN_SCOPES
from yilian.auth.roles import CEILINGS

log = logging.getLogger("yilian.auth")

_WARNING = ("ACCESS CONTROL IS OFF (YILIAN_AUTH=off): anyone who reaches this server can "
            "read and change every record. Never run it like this with real patients' data.")


def smart_metadata(fhir_base: str, root: str) -> dict[str, Any]:
    """What SMART clients read first (SMART App Launch 2.0, section 2.0.8)."""
    resource_scopes = {scope for ceiling in CEILINGS.values() for scope in ceiling.split()}
    return {
        "issuer": fhir_base,
        "authorization_endpoint": f"{root}/auth/authorize",
        "token_endpoint": f"{root}/auth/token",
        "revocation_endpoint": f"{root}/auth/revoke",
        "introspection_endpoint": f"{root}/auth/introspect",
        "grant_types_supported": ["authorization_code", "refresh_token",
                                  "client_credentials"],
        "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "code_challenge_methods_supported": ["S256"],
        "response_types_supported": ["code"],
        "scopes_supported": sorted(resource_scopes | SIGN_IN_SCOPES),
        "capabilities": ["launch-standalone", "client-public", "client-confidential-asymmetric",
                         "context-standalone-patient", "permission-offline",
                         "permission-online", "permission-patient", "permission-user",
                         "permission-v1", "permission-v2"],
    }


def warn_auth_off() -> None:
    banner = "!" * 78
    print(f"{banner}\n{_WARNING}\n{banner}", file=sys.stderr, flush=True)
    log.warning(_WARNING)
