"""Searching over HTTP in tests: the ids a query finds, and many cases checked at once."""

from __future__ import annotations

from urllib.parse import quote

from starlette.testclient import TestClient


def ids(client: TestClient, query: str, **headers: str) -> set[str]:
    response = client.get(f"/fhir/{query}", headers=headers)
    assert response.status_code == 200, f"{query}: {response.status_code} {response.text}"
    bundle = response.json()
    return {e["resource"]["id"] for e in bundle.get("entry", [])
            if e.get("search", {}).get("mode") == "match"}


def check(client: TestClient, cases: list[tuple[str, set[str]]]) -> None:
    wrong = [(query, expected, found) for query, expected in cases
             if (found := ids(client, query)) != expected]
    assert not wrong, "\n".join(f"{q}: expected {sorted(e)}, found {sorted(f)}"
                                for q, e, f in wrong)


def q(text: str) -> str:
    """Escape what a URL query cannot carry as is ('+' of a time zone, '|', '$')."""
    return quote(text, safe="=&:/?,")
