"""Every response a test receives through the test client is checked against
the OpenAPI document (blueprints/openapi.yaml as /openapi.json serves it):
its status must be documented for the operation, and its content type and
body must match. Only the response is checked: tests send malformed requests
on purpose, and what the service answers to them must still be documented.

Requests the app does not route are checked against what the document says
of them: 404 not_found, or 405 method_not_allowed with Allow. Routes a test
adds to the app itself (not in a blueprint) have no operation; their error
answers must still be the documented Error shape.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

from flask import Flask
from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_schema_validator import OAS31Validator
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import RequestRedirect
from werkzeug.test import TestResponse

from blueprints.openapi import build
from services import errors


class Mismatch(AssertionError):
    """A response the OpenAPI document does not describe."""


@cache
def specification(cookie_name: str) -> tuple[OpenAPI, dict[str, Any]]:
    document = build(cookie_name)
    return OpenAPI.from_dict(document), document


class AnsweredRequest(WerkzeugOpenAPIRequest):
    """The request a response answered, for finding its operation: the app
    has read its body already, and only the response is checked."""

    @property
    def body(self) -> bytes | None:
        return None


class ResponseCheck:
    """Checks responses; counts them, and keeps what did not match (a test
    may make its requests in threads, where a raised error can be lost)."""

    def __init__(self) -> None:
        self.checked = 0
        self.mismatches: list[str] = []
        self._lock = threading.Lock()

    def check(self, app: Flask, response: TestResponse) -> None:
        try:
            self._check(app, response)
        except Exception as exc:
            request = response.request
            problem = f"{request.method} {request.path} -> {response.status}: {exc}"[:2000]
            with self._lock:
                self.mismatches.append(problem)
            raise Mismatch(f"not as the OpenAPI document says: {problem}") from exc
        with self._lock:
            self.checked += 1

    def _check(self, app: Flask, response: TestResponse) -> None:
        spec, document = specification(app.config["SESSION_COOKIE_NAME"])
        request = response.request
        try:
            rule, _ = app.url_map.bind_to_environ(request.environ).match(return_rule=True)
        except NotFound:
            self._routing(document, response, errors.NotFound, "NotFound")
            return
        except MethodNotAllowed:
            self._routing(document, response, errors.MethodNotAllowed, "MethodNotAllowed")
            if "Allow" not in response.headers:
                raise Mismatch("a 405 without Allow") from None
            return
        except RequestRedirect:
            raise Mismatch("a redirect: the document has none") from None
        if "." not in rule.endpoint:  # added by the test, not by a blueprint
            if response.status_code >= 400:
                kind = errors.by_slug(error_body(document, response)["error"])
                if kind.status != response.status_code:
                    raise Mismatch(f"{kind.slug} is a {kind.status}")
            return
        if request.method == "HEAD":
            return  # the GET's answer without a body; the document lists GETs
        spec.validate_response(AnsweredRequest(request), WerkzeugOpenAPIResponse(response))

    def _routing(
        self,
        document: dict[str, Any],
        response: TestResponse,
        kind: type[errors.ServiceError],
        name: str,
    ) -> None:
        if response.status_code != kind.status:
            raise Mismatch(f"an unrouted request must answer {kind.status}")
        validate(document, document["components"]["responses"][name], response)


def error_body(document: dict[str, Any], response: TestResponse) -> dict[str, Any]:
    if response.mimetype != "application/json":
        raise Mismatch(f"an error as {response.mimetype}, not JSON")
    body = response.get_json()
    OAS31Validator(
        {"$ref": "#/components/schemas/Error", "components": document["components"]}
    ).validate(body)
    return body


def validate(document: dict[str, Any], documented: dict[str, Any], response: TestResponse) -> None:
    content = documented["content"]
    if response.mimetype not in content:
        raise Mismatch(f"{response.mimetype} is not one of {sorted(content)}")
    schema = content[response.mimetype]["schema"]
    OAS31Validator({**schema, "components": document["components"]}).validate(response.get_json())


# One for the whole run: the HTTP tier's summary line counts what it checked.
RESPONSES = ResponseCheck()
