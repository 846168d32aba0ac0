"""Searching over HTTP in tests: the ids a query finds, and many cases checked at once."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

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


def pages(client: TestClient, query: str, *, at_most: int = 30) -> list[list[str]]:
    """Every page's ids, following the next links (a page that repeats, or paging that never
    ends, fails after `at_most` pages)."""
    found: list[list[str]] = []
    url: str | None = f"/fhir/{query}"
    while url is not None:
        assert len(found) < at_most, f"{query}: a page repeats or never ends: {found[-3:]}"
        response = client.get(url)
        assert response.status_code == 200, response.text
        bundle = response.json()
        found.append([entry["resource"]["id"] for entry in bundle.get("entry", [])])
        following = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        url = None
        if following:
            parts = urlsplit(following[0])
            url = f"{parts.path}?{parts.query}"
    return found
