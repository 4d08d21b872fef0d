"""Every error is JSON {code, error, message} with its status, and every slug
is documented in the README."""

from __future__ import annotations

import re

import pytest

from helpers import ROOT
from services import errors


@pytest.mark.parametrize(
    ("method", "path", "status", "slug"),
    [
        ("GET", "/", 404, "not_found"),
        ("GET", "/user/nope", 404, "not_found"),
        ("POST", "/user/info", 405, "method_not_allowed"),
        ("GET", "/oauth/login", 405, "method_not_allowed"),
        ("DELETE", "/oauth/logout", 405, "method_not_allowed"),
    ],
)
def test_routing_errors_are_json(client, method, path, status, slug):
    response = client.open(path, method=method)
    assert response.status_code == status
    assert response.is_json
    body = response.get_json()
    assert body["error"] == slug and body["code"] != 0 and body["message"]


def test_405_keeps_the_allow_header(client):
    response = client.get("/oauth/login")
    assert "POST" in response.headers["Allow"]


def test_an_unexpected_failure_is_a_json_500_without_details(app, caplog):
    def explode():
        raise RuntimeError("boom with detail")

    app.add_url_rule("/explode", view_func=explode)
    response = app.test_client().get("/explode")
    assert response.status_code == 500
    assert response.get_json()["error"] == "internal_error"
    assert "boom" not in response.get_data(as_text=True)
    assert any(r.levelname == "ERROR" for r in caplog.records)


def test_codes_and_slugs_are_unique_and_non_zero():
    kinds = errors.catalog()
    assert len({k.slug for k in kinds}) == len(kinds)
    assert len({k.code for k in kinds}) == len(kinds)
    assert all(k.code != 0 and 400 <= k.status < 600 for k in kinds)


def test_every_slug_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    table = {
        (int(status), slug, int(code))
        for status, slug, code in re.findall(
            r"\|\s*(\d{3})\s*\|\s*`([a-z_]+)`\s*\|\s*(\d+)\s*\|", readme
        )
    }
    expected = {(k.status, k.slug, k.code) for k in errors.catalog()}
    assert expected <= table, sorted(expected - table)
