"""Access tokens for the bench: every request to `yilian serve` carries one, as in production.

The server checks `Authorization: Bearer <token>` on every /fhir request (all but
`GET /fhir/metadata`), so the bench measures that check too. The token is made with the
server's own code, as `yilian token issue` does: an admin user `bench` in the bench database
(created if missing), a `system/*.cruds` token valid for a day.
"""

from __future__ import annotations

import httpx

USERNAME = "bench"
PASSWORD = "bench-password-1"
ORGANIZATION = "Organization/bench"
SCOPE = "system/*.cruds"
MINUTES = 24 * 60  # the longest a token may live: the longest search bench fits in it

# Given to every `yilian serve` the bench starts, so that a YILIAN_AUTH=off in the caller's
# environment cannot turn the check off under measurement.
SERVER_ENV = {"YILIAN_AUTH": "true"}


def bench_authorization(url: str) -> str:
    """The `Authorization` header value for the bench user of the migrated database at
    `url`: the user is created on first use, a new token is issued every time."""
    from yilian.auth.roles import Role
    from yilian.auth.service import create_user, find_user, token_for
    from yilian.auth.tokens import Keys
    from yilian.kit.db import make_engine

    engine = make_engine(url, pool_size=1)
    try:
        with engine.begin() as conn:
            user = find_user(conn, USERNAME) or create_user(
                conn, USERNAME, PASSWORD, [(Role.ADMIN, ORGANIZATION)])
        issued = token_for(Keys(engine), user, SCOPE, minutes=MINUTES)
    finally:
        engine.dispose()
    return f"Bearer {issued.token}"


def headers(authorization: str, **more: str) -> dict[str, str]:
    """Request headers with the token (for httpx)."""
    return {"Authorization": authorization, **more}


def require_access_control(base: str, authorization: str) -> None:
    """Fail unless the server at `base` refuses a request without a token (401) and answers
    the same request with the token: what is measured is the server as deployed."""
    path = "/fhir/Patient?_count=1"
    with httpx.Client(base_url=base, timeout=60.0) as client:
        without = client.get(path, headers={"Accept": "application/fhir+json"})
        with_token = client.get(path, headers=headers(authorization,
                                                      Accept="application/fhir+json"))
    if without.status_code != 401:
        raise RuntimeError(f"yilian serve answered GET {path} without a token with "
                           f"{without.status_code}, not 401: access control is off")
    if with_token.status_code != 200:
        raise RuntimeError(f"yilian serve answered GET {path} with the bench token with "
                           f"{with_token.status_code}: {with_token.text[:300]}")
