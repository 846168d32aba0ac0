"""Small helpers the HTTP tests share."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from yilian.auth.tokens import Keys, issue

FHIR_JSON = {"Content-Type": "application/fhir+json"}


def patient(family: str = "张", given: str = "三", **extra: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "name": [{"family": family, "given": [given]}],
        "gender": "male",
        "birthDate": "1980-05-17",
    }
    resource.update(extra)
    return resource


def identifier(system: str, value: str) -> list[dict[str, str]]:
    return [{"system": system, "value": value}]


def issue_expressions(outcome: dict[str, Any]) -> list[str]:
    return [e for issue in outcome.get("issue", []) for e in issue.get("expression", [])]


def put_entry(resource: dict[str, Any]) -> dict[str, Any]:
    """A transaction entry that PUTs the resource at its own id."""
    return {"resource": resource,
            "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}}


def admin_token(keys: Keys) -> str:
    """An access token that may do everything, from the app's own keys (`*` does not reach
    AuditEvent: it is named)."""
    return issue(keys, subject="test-admin",
                 scope="system/*.cruds system/AuditEvent.cruds").token


def authorized(client: TestClient) -> TestClient:
    """The test client sending an all-powerful access token with every request."""
    keys: Keys = client.app.state.keys  # type: ignore[attr-defined]
    client.headers["Authorization"] = f"Bearer {admin_token(keys)}"
    return client


def put_all(client: TestClient, resources: list[dict[str, Any]]) -> TestClient:
    """The resources PUT at their own ids in one transaction (which must succeed)."""
    bundle = {"resourceType": "Bundle", "type": "transaction",
              "entry": [put_entry(resource) for resource in resources]}
    response = client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    return client
