"""The OpenAPI document (blueprints/openapi.yaml, completed by
blueprints/openapi.py) is valid OpenAPI 3.1, and what it says of errors is
the error catalogue's."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate

from blueprints import openapi
from services import errors

DOCUMENT = openapi.build()
OPERATIONS = [
    (path, method, operation)
    for path, item in DOCUMENT["paths"].items()
    for method, operation in item.items()
    if method in openapi.METHODS
]


def test_the_document_is_valid_openapi_3_1():
    validate(DOCUMENT)
    assert DOCUMENT["openapi"].startswith("3.1")


def test_the_error_schema_is_the_catalogue():
    error = DOCUMENT["components"]["schemas"]["Error"]["properties"]
    kinds = errors.catalog()
    assert error["error"]["enum"] == [kind.slug for kind in kinds]
    assert error["code"]["enum"] == [kind.code for kind in kinds]


@pytest.mark.parametrize(("path", "method", "operation"), OPERATIONS)
def test_each_error_response_lists_its_slugs_under_their_status(path, method, operation):
    listed = set()
    for status, response in operation["responses"].items():
        if int(status) < 400:
            continue
        schema = response["content"]["application/json"]["schema"]["allOf"][1]
        slugs = schema["properties"]["error"]["enum"]
        assert {errors.by_slug(slug).status for slug in slugs} == {int(status)}
        assert schema["properties"]["code"]["enum"] == [errors.by_slug(s).code for s in slugs]
        listed.update(slugs)
    assert listed == set(operation["x-errors"])


def test_every_operation_has_an_id_and_a_success():
    ids = [operation["operationId"] for _, _, operation in OPERATIONS]
    assert len(ids) == len(set(ids))
    for _, _, operation in OPERATIONS:
        assert any(int(status) < 400 for status in operation["responses"])


def test_an_unknown_slug_in_the_yaml_is_refused():
    with pytest.raises(ValueError, match="no_such_slug"):
        openapi.expand(["app", "no_such_slug"], DOCUMENT["x-error-sets"])


def test_the_session_cookie_is_named_as_configured():
    scheme = openapi.build("custom_sid")["components"]["securitySchemes"]["session"]
    assert scheme == {**scheme, "type": "apiKey", "in": "cookie", "name": "custom_sid"}
