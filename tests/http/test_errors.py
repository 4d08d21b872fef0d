"""Every error is JSON {code, error, message} with its status, and every slug
is documented in the README."""

from __future__ import annotations

import random
import re

import pytest

from services import errors
from support.constants import ROOT


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


def odd_values(rng: random.Random, depth: int = 0) -> object:
    choices = [
        lambda: None,
        lambda: rng.choice([True, False]),
        lambda: rng.randint(-(2**70), 2**70),
        lambda: rng.random() * 1e308,
        lambda: "".join(
            rng.choice("ab+/=_- \n\t\x00é🐱𠀀\"'\\") for _ in range(rng.randint(0, 60))
        ),
        lambda: "A" * rng.choice([0, 16, 24, 43, 44, 200, 5000]),
    ]
    if depth < 3:
        choices += [
            lambda: [odd_values(rng, depth + 1) for _ in range(rng.randint(0, 3))],
            lambda: {rng.choice(FIELDS): odd_values(rng, depth + 1) for _ in range(3)},
        ]
    return rng.choice(choices)()


FIELDS = ["code", "type", "encryptedData", "iv", "rawData", "signature", "all", "x"]
ENDPOINTS = [
    ("POST", "/oauth/login"),
    ("POST", "/oauth/logout"),
    ("GET", "/oauth/check"),
    ("GET", "/user/info"),
    ("POST", "/user/bindinfo"),
    ("POST", "/user/bindphone"),
]


@pytest.mark.parametrize("seed", range(4))
def test_no_input_produces_a_server_error(client, login, seed):
    """Random bodies, JSON and form, logged in and not: never a 5xx, always the shape."""
    rng = random.Random(seed)
    token = login()
    for _ in range(60):
        method, path = rng.choice(ENDPOINTS)
        headers = {"Authorization": f"Bearer {token}"} if rng.random() < 0.7 else {}
        body = {name: odd_values(rng) for name in rng.sample(FIELDS, rng.randint(0, 4))}
        if rng.random() < 0.3:
            form = {k: str(v) for k, v in body.items()}
            response = client.open(path, method=method, data=form, headers=headers)
        else:
            response = client.open(path, method=method, json=body, headers=headers)
        assert response.status_code < 500, (path, body, response.get_json())
        payload = response.get_json()
        assert payload["code"] == 0 or (payload["error"] and payload["message"])
