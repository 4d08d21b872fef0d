"""The OpenAPI document: blueprints/openapi.yaml, completed from what the code
already says so that nothing is written twice.

    build(cookie_name, apps)   the document, as /openapi.json serves it

What is added: components.schemas.Error from the error catalogue
(services/errors.py); each operation's error responses from its `x-errors`
(slugs, or names of the `x-error-sets`), one response per status with the
enum of the slugs that operation can answer; the operations shared by
/wechat/push and /wechat/push/{appid}; the session cookie's name.
"""

from __future__ import annotations

import copy
from functools import cache
from http import HTTPStatus
from pathlib import Path
from typing import Any

import yaml

from services import errors
from services.apps import Apps

SOURCE = Path(__file__).with_name("openapi.yaml")
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
# Routing failures (any path, any method) and bugs: the document describes
# them once, in components.responses, not on every operation.
ROUTING = {"NotFound": errors.NotFound, "MethodNotAllowed": errors.MethodNotAllowed}
BUG = errors.ServiceError


@cache
def source() -> dict[str, Any]:
    return yaml.safe_load(SOURCE.read_text(encoding="utf-8"))


def build(cookie_name: str = "sid", apps: Apps | None = None) -> dict[str, Any]:
    """The document; with `apps`, X-WX-AppId, the push URL's {appid} and the
    login's type name exactly what this deployment serves."""
    document = copy.deepcopy(source())
    components = document["components"]
    shared = components.pop("x-operations")
    sets = document["x-error-sets"]
    components["schemas"]["Error"] = error_schema(errors.catalog())
    responses = components["responses"]
    for name, kind in {**ROUTING, "InternalError": BUG}.items():
        responses[name] = error_response([kind])
    responses["MethodNotAllowed"]["headers"] = {
        "Allow": {"description": "The methods the path takes.", "schema": {"type": "string"}}
    }
    components["securitySchemes"]["session"]["name"] = cookie_name
    if apps is not None:
        served(document, apps)
    for path, item in document["paths"].items():
        for method in METHODS:
            if method not in item:
                continue
            operation = item[method]
            if "$ref" in operation:
                operation = item[method] = inline(shared, operation["$ref"], path)
            slugs = expand(operation.get("x-errors", []), sets)
            operation["x-errors"] = slugs
            operation["responses"].update(error_responses(slugs))
            for response in operation["responses"].values():
                linked(response, cookie_name)
    return document


def linked(response: dict[str, Any], cookie_name: str) -> None:
    """`x-session-links`: links that hand the answer's token to each named
    operation as the session cookie (what a client does next)."""
    targets = response.pop("x-session-links", None)
    if targets:
        response["links"] = {
            target: {
                "operationId": target,
                "parameters": {f"cookie.{cookie_name}": "$response.body#/data/token"},
            }
            for target in targets
        }


def served(document: dict[str, Any], apps: Apps) -> None:
    appids = [app.appid for app in apps]
    # An empty X-WX-AppId is the same as none: the first app.
    header = document["components"]["parameters"]["AppId"]["schema"]
    header["enum"] = [*appids, ""]
    # `type` must match the app's kind: only the kinds served can be right.
    login = document["components"]["schemas"]["LoginRequest"]["properties"]["type"]
    login["enum"] = sorted({app.login_type for app in apps})
    for parameter in document["paths"]["/wechat/push/{appid}"]["parameters"]:
        if parameter["name"] == "appid":
            parameter["schema"]["enum"] = list(appids)


def inline(shared: dict[str, Any], ref: str, path: str) -> dict[str, Any]:
    name = ref.rsplit("/", 1)[1]
    operation = copy.deepcopy(shared[name])
    suffix = "ForApp" if "{" in path else ""
    operation["operationId"] = f"{name}{suffix}"
    return operation


def expand(names: list[str], sets: dict[str, list[str]]) -> list[str]:
    """Slugs, in catalogue order; an unknown name is a mistake in the YAML."""
    wanted = {slug for name in names for slug in sets.get(name, [name])}
    known = {kind.slug: kind for kind in errors.catalog()}
    unknown = wanted - known.keys()
    if unknown:
        raise ValueError(f"openapi.yaml names unknown error slugs: {sorted(unknown)}")
    return [kind.slug for kind in errors.catalog() if kind.slug in wanted]


def error_responses(slugs: list[str]) -> dict[str, Any]:
    by_status: dict[int, list[type[errors.ServiceError]]] = {}
    for slug in slugs:
        kind = errors.by_slug(slug)
        by_status.setdefault(kind.status, []).append(kind)
    return {str(status): error_response(kinds) for status, kinds in sorted(by_status.items())}


def error_response(kinds: list[type[errors.ServiceError]]) -> dict[str, Any]:
    phrase = HTTPStatus(kinds[0].status).phrase
    lines = "\n".join(f"- `{kind.slug}` ({kind.code}): {kind.message}" for kind in kinds)
    response: dict[str, Any] = {
        "description": f"{phrase}.\n\n{lines}",
        "content": {
            "application/json": {
                "schema": {
                    "allOf": [
                        {"$ref": "#/components/schemas/Error"},
                        {
                            "properties": {
                                "code": {"enum": [kind.code for kind in kinds]},
                                "error": {"enum": [kind.slug for kind in kinds]},
                            }
                        },
                    ]
                }
            }
        },
    }
    headers = {}
    if any(retries(kind) for kind in kinds):
        headers["Retry-After"] = {"$ref": "#/components/headers/RetryAfter"}
    challenges = sorted({kind.challenge for kind in kinds if kind.challenge})
    if challenges:
        headers["WWW-Authenticate"] = {
            "description": "Which credential to send.",
            "schema": {"enum": challenges},
        }
    if headers:
        response["headers"] = headers
    return response


def retries(kind: type[errors.ServiceError]) -> bool:
    """Whether the error can carry Retry-After (the rate limits always do)."""
    return kind.retry_after_default is not None or kind.status == 429


def error_schema(kinds: list[type[errors.ServiceError]]) -> dict[str, Any]:
    return {
        "type": "object",
        "description": "Every failure. `error` is the stable slug to branch on.",
        "required": ["code", "error", "message"],
        "additionalProperties": False,
        "properties": {
            "code": {"type": "integer", "enum": [kind.code for kind in kinds]},
            "error": {"type": "string", "enum": [kind.slug for kind in kinds]},
            "message": {"type": "string", "minLength": 1},
            "data": {"description": "Details, where an error has them (readyz: each part)."},
        },
    }
