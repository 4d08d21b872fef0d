"""/openapi.json describes every route the app serves, and /docs renders it
from files the service itself serves (no CDN). Every response of this tier is
checked against the document by the test client (support/openapi.py)."""

from __future__ import annotations

import re

import pytest

from blueprints import GRAPH, docs, openapi

SKIPPED = {"HEAD", "OPTIONS"}
pytestmark = pytest.mark.sqlite_only  # the document, not the data


def documented_path(rule: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)


def test_every_route_is_an_operation_and_every_operation_a_route(app, client):
    served = {
        (method.lower(), documented_path(rule.rule))
        for rule in app.url_map.iter_rules()
        for method in rule.methods - SKIPPED
    }
    document = client.get("/openapi.json").get_json()
    described = {
        (method, path)
        for path, item in document["paths"].items()
        for method in item
        if method in openapi.METHODS
    }
    assert described == served


def test_the_served_document_is_the_built_one(app, client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    served = response.get_json()
    expected = openapi.build("sid", app.extensions[GRAPH].apps)
    (name,) = expected["paths"]["/docs/assets/{name}"]["get"]["parameters"]
    name["schema"]["enum"] = list(docs.SERVED)
    assert served == expected


@pytest.mark.parametrize("config_overrides", [{"SESSION_COOKIE_NAME": "wxsid"}])
def test_the_cookie_scheme_follows_the_setting(client):
    schemes = client.get("/openapi.json").get_json()["components"]["securitySchemes"]
    assert schemes["session"]["name"] == "wxsid"


def test_the_docs_page_loads_nothing_from_elsewhere(client):
    response = client.get("/docs")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources and not [source for source in sources if "//" in source]
    for source in sources:
        asset = client.get("/" + source)
        assert asset.status_code == 200, source
        assert asset.get_data()


@pytest.mark.parametrize("name", ["nope.js", "LICENSE", "oauth2-redirect.html", "..%2Fdocs.py"])
def test_only_what_the_page_loads_is_served(client, name):
    response = client.get(f"/docs/assets/{name}")
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


def test_the_document_lists_the_assets_and_the_apps_served(client, app):
    document = client.get("/openapi.json").get_json()
    (name,) = document["paths"]["/docs/assets/{name}"]["get"]["parameters"]
    assert name["schema"]["enum"] == sorted(
        re.findall(r'"/?docs/assets/([^"]+)"', client.get("/docs").get_data(as_text=True))
    )
    appids = [served.appid for served in app.extensions[GRAPH].apps]
    header = document["components"]["parameters"]["AppId"]["schema"]
    assert header["enum"] == [*appids, ""]
