"""WeChat's message push: signatures (official vectors), the secure-mode
cipher, and reading JSON and XML bodies."""

from __future__ import annotations

import base64
import secrets

import pytest

from services import errors
from services.crypto.push import PushCipher, signature, signatures_match
from services.wechat.push import parse_message

AES_KEY = base64.b64encode(bytes(range(32))).decode().rstrip("=")  # 43 characters


@pytest.mark.parametrize(
    ("timestamp", "nonce", "expected"),
    [
        # The message-push page's GET verification example (Token AAAAA).
        ("1714036504", "1514711492", "f464b24fc39322e44b38aa78f5edd27bd1441696"),
        # Its plaintext-mode POST example.
        ("1714037059", "486452656", "899cf89e464efb63f54ddac96b0a0a235f53aa78"),
    ],
)
def test_signatures_match_the_official_examples(timestamp, nonce, expected):
    assert signature("AAAAA", timestamp, nonce) == expected
    assert signatures_match(expected, expected.upper())
    assert not signatures_match(expected, None)
    assert not signatures_match(expected, expected[:-1] + "0")


def test_msg_signature_sorts_the_encrypted_field_in():
    assert signature("t", "1", "2", "E") == signature("t", "E", "1", "2")


@pytest.mark.parametrize("message", [b"", b"{}", "头像 🐱".encode(), b"x" * 1000])
def test_encrypt_then_decrypt(message):
    cipher = PushCipher(AES_KEY)
    encrypted = cipher.encrypt(message, "wx0123456789abcdef")
    assert len(base64.b64decode(encrypted)) % 32 == 0
    assert cipher.decrypt(encrypted) == (message, "wx0123456789abcdef")


@pytest.mark.parametrize(
    "encrypted",
    [
        "not base64!",
        "",
        base64.b64encode(b"short").decode(),
        base64.b64encode(secrets.token_bytes(48)).decode(),  # noise: bad padding
        PushCipher(base64.b64encode(b"k" * 32).decode().rstrip("=")).encrypt(b"{}", "wxa"),
    ],
)
def test_what_does_not_open_is_push_malformed(encrypted):
    with pytest.raises(errors.PushMalformed):
        PushCipher(AES_KEY).decrypt(encrypted)


def test_a_lying_length_is_push_malformed():
    cipher = PushCipher(AES_KEY)
    # 16 random bytes, a length far past the end, then padding to 32.
    from Crypto.Cipher import AES

    key = base64.b64decode(AES_KEY + "=")
    plain = b"r" * 16 + (10_000).to_bytes(4, "big") + b"{}" + bytes([10]) * 10
    forged = base64.b64encode(AES.new(key, AES.MODE_CBC, key[:16]).encrypt(plain)).decode()
    with pytest.raises(errors.PushMalformed):
        cipher.decrypt(forged)


def test_json_and_xml_read_the_same():
    json_body = (
        b'{"ToUserName":"gh_1","Event":"wxa_media_check","result":{"suggest":"pass",'
        b'"label":100},"detail":[{"strategy":"content_model","suggest":"pass"}]}'
    )
    xml_body = (
        b"<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Event><![CDATA[wxa_media_check]]>"
        b"</Event><result><suggest><![CDATA[pass]]></suggest><label>100</label></result>"
        b"<detail><strategy><![CDATA[content_model]]></strategy><suggest>pass</suggest></detail>"
        b"<detail><strategy>keyword</strategy><suggest>pass</suggest></detail></xml>"
    )
    from_json, from_xml = parse_message(json_body), parse_message(xml_body)
    assert from_json["result"]["suggest"] == from_xml["result"]["suggest"] == "pass"
    assert from_xml["result"]["label"] == "100"  # XML has text only
    assert [d["strategy"] for d in from_xml["detail"]] == ["content_model", "keyword"]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"[1, 2]",
        b"{not json",
        b"<xml><a>",
        b"plain words",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><xml><a>&a;</a></xml>',
        b"<xml>just text</xml>",
        b"{" * 100_000,
    ],
)
def test_unreadable_bodies_are_push_malformed(body):
    with pytest.raises(errors.PushMalformed):
        parse_message(body)
