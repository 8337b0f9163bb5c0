"""Every endpoint the README names is served by the real app (`create_app()`), and is in its OpenAPI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gridrisk.main import create_app
from gridrisk.settings import Settings

README = Path(__file__).resolve().parents[1] / "README.md"
# Pages for people, served outside the API description on purpose.
PAGES = {"/", "/docs"}
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def documented() -> list[tuple[str | None, str]]:
    """(method or None, path) for every endpoint README.md names: `METHOD /path`, curl lines, `/path`."""
    text = README.read_text()
    found: list[tuple[str | None, str]] = []
    for method, path in re.findall(r"\b(GET|POST|PUT|PATCH|DELETE) (/[^\s`'\"]*)", text):
        found.append((method, path))
    for line in text.splitlines():
        if "curl" not in line:
            continue
        for url in re.findall(r"http://127\.0\.0\.1:8000(/[^\s'\"]*)", line):
            forced = re.search(r"-X (GET|POST|PUT|PATCH|DELETE)", line)
            found.append((forced.group(1) if forced else ("POST" if " -d " in line else "GET"), url))
    for path in re.findall(r"`(/[A-Za-z0-9_./{}-]*)`", text):
        found.append((None, path))
    cleaned = []
    for method, path in found:
        path = path.split("?")[0].rstrip(".,;:)")
        if path.startswith("/web/") or "<" in path or not path:  # `/<path>/import`: a pattern, not a route
            continue
        cleaned.append((method, path))
    return sorted(set(cleaned), key=lambda mp: (mp[1], mp[0] or ""))


def _pattern(openapi_path: str) -> re.Pattern[str]:
    parts = re.split(r"\{[^}]+\}", openapi_path)
    return re.compile("[^/]+".join(re.escape(p) for p in parts))


@pytest.fixture(scope="module")
def openapi() -> dict:
    return create_app(Settings()).openapi()


@pytest.fixture(scope="module")
def client() -> TestClient:
    # No lifespan (no `with`): the pages named here are served without the database.
    return TestClient(create_app(Settings()))


def test_readme_names_endpoints():
    """The parser finds the README's endpoints (a broken parser would make the next test vacuous)."""
    names = documented()
    assert len(names) > 30
    assert ("POST", "/risk-sources/import") in names


@pytest.mark.parametrize(("method", "path"), documented(), ids=lambda v: str(v))
def test_documented_endpoint_is_served(method, path, openapi, client):
    if path in PAGES:
        assert client.get(path).status_code == 200, f"README names page {path}, the app does not serve it"
        return
    concrete = re.sub(r"\{[^}]+\}", "X", path)
    matches = [p for p in openapi["paths"] if _pattern(p).fullmatch(concrete)]
    if not matches and path.count("/") == 1:
        # A relative mention such as `/unpin` next to its full path: it ends a served path.
        matches = [p for p in openapi["paths"] if p.endswith(path)]
    assert matches, f"README names {method or 'an endpoint'} {path}: not in the app's OpenAPI document"
    if method is not None:
        methods = {m.upper() for p in matches for m in openapi["paths"][p]}
        assert method in methods, f"README names {method} {path}: the app serves only {sorted(methods)}"
