"""Reading what WeChat pushes to the message-push URL: JSON or XML, as the
console's data format says (the Content-Type is not to be trusted, so JSON
is tried first, as easywechat does)."""

from __future__ import annotations

import json
import re
from typing import Any
from xml.etree import ElementTree

from services import errors

# No document type, no entities: nothing in a push needs them, and they are
# how XML parsers are made to blow up.
XML_DECLARATIONS = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)


def parse_message(body: bytes) -> dict[str, Any]:
    """The push as a dict; nested XML elements become dicts, repeated ones lists."""
    stripped = body.strip()
    if stripped.startswith(b"{"):
        try:
            message = json.loads(stripped)
        except (ValueError, RecursionError):
            raise errors.PushMalformed() from None
        if not isinstance(message, dict):
            raise errors.PushMalformed()
        return message
    if stripped.startswith(b"<"):
        return _parse_xml(stripped)
    raise errors.PushMalformed()


def _parse_xml(body: bytes) -> dict[str, Any]:
    if XML_DECLARATIONS.search(body):
        raise errors.PushMalformed("XML with a DOCTYPE or ENTITY is not accepted.")
    try:
        root = ElementTree.fromstring(body)
    except (ElementTree.ParseError, ValueError, RecursionError):
        raise errors.PushMalformed() from None
    value = _element(root)
    if not isinstance(value, dict):
        raise errors.PushMalformed()
    return value


def _element(element: ElementTree.Element) -> Any:
    children = list(element)
    if not children:
        return (element.text or "").strip()
    value: dict[str, Any] = {}
    for child in children:
        item = _element(child)
        if child.tag in value:
            existing = value[child.tag]
            value[child.tag] = [*existing, item] if isinstance(existing, list) else [existing, item]
        else:
            value[child.tag] = item
    return value
