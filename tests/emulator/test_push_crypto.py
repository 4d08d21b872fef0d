"""Message-push crypto and signatures against the official worked examples (reference §11
and the message-push page), the encrypt/decrypt round trip, and the body formats."""

from __future__ import annotations

import json
import struct

import pytest

from support.emulator import (
    PLAIN_POST_VECTOR,
    PUSH_AES_KEY,
    PUSH_APPID,
    PUSH_TOKEN,
    REPLY_ENCRYPT,
    REPLY_MESSAGE,
    REPLY_MSG_SIGNATURE,
    REPLY_RANDOM,
    REPLY_TIMESTAMP,
    SECURE_ENCRYPT,
    SECURE_MESSAGE,
    SECURE_MSG_SIGNATURE,
    SECURE_NONCE,
    SECURE_SIGNATURE,
    SECURE_TIMESTAMP,
    VERIFY_VECTOR,
    receiver_decrypt,
    sha1_signature,
    xml_to_dict,
)
from wechat_emulator import crypto, push

# ----- official vectors --------------------------------------------------------------------


@pytest.mark.parametrize("vector", [VERIFY_VECTOR, PLAIN_POST_VECTOR])
def test_signature_vectors(vector: tuple[str, str, str]) -> None:
    timestamp, nonce, expected = vector
    assert crypto.push_signature(PUSH_TOKEN, timestamp, nonce) == expected
    # Order of the arguments does not matter: they are sorted.
    assert crypto.push_signature(nonce, PUSH_TOKEN, timestamp) == expected


def test_secure_mode_vector_signatures() -> None:
    assert crypto.push_signature(PUSH_TOKEN, SECURE_TIMESTAMP, SECURE_NONCE) == SECURE_SIGNATURE
    msg_signature = crypto.push_signature(
        PUSH_TOKEN, SECURE_TIMESTAMP, SECURE_NONCE, SECURE_ENCRYPT
    )
    assert msg_signature == SECURE_MSG_SIGNATURE


def test_secure_mode_vector_decrypts() -> None:
    message, appid = crypto.decrypt_push_message(SECURE_ENCRYPT, PUSH_AES_KEY)
    assert message.decode() == SECURE_MESSAGE
    assert appid == PUSH_APPID
    assert len(message) == 167  # msg_len in the doc's walk-through


def test_reply_vector_encrypts_byte_for_byte() -> None:
    encrypted = crypto.encrypt_push_message(REPLY_MESSAGE, PUSH_AES_KEY, PUSH_APPID, REPLY_RANDOM)
    assert encrypted == REPLY_ENCRYPT
    signature = crypto.push_signature(PUSH_TOKEN, REPLY_TIMESTAMP, SECURE_NONCE, encrypted)
    assert signature == REPLY_MSG_SIGNATURE


def test_aes_key_is_base64_of_the_43_characters() -> None:
    key = crypto.push_aes_key(PUSH_AES_KEY)
    assert len(key) == 32
    assert key == bytes.fromhex("00" * 32)  # "A" is base64 for six zero bits


@pytest.mark.parametrize("bad", ["A" * 42, "A" * 44, "A" * 42 + "+", "A" * 42 + "é", ""])
def test_bad_encoding_aes_key_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        crypto.push_aes_key(bad)


# ----- round trip -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 11, 12, 27, 28, 44, 100, 1000])
def test_round_trip_and_padding_to_32(size: int) -> None:
    key = crypto.new_encoding_aes_key()
    message = ("微" * size).encode()[:size] if size else b""
    encrypted = crypto.encrypt_push_message(message, key, "wx0123456789abcdef")
    raw = crypto.base64.b64decode(encrypted)
    full_length = 16 + 4 + len(message) + len("wx0123456789abcdef")
    # PKCS#7 to a multiple of 32, always adding 1..32 bytes.
    assert len(raw) % 32 == 0
    assert 1 <= len(raw) - full_length <= 32
    assert crypto.decrypt_push_message(encrypted, key) == (message, "wx0123456789abcdef")
    # The receiver's independent code agrees.
    assert receiver_decrypt(encrypted, key) == (message, "wx0123456789abcdef")


def test_plaintext_layout() -> None:
    key = crypto.new_encoding_aes_key()
    encrypted = crypto.encrypt_push_message(b"hello", key, "wxapp", b"0123456789abcdef")
    aes_key = crypto.push_aes_key(key)
    cipher = crypto.AES.new(aes_key, crypto.AES.MODE_CBC, aes_key[:16])
    plain = cipher.decrypt(crypto.base64.b64decode(encrypted))
    assert plain[:16] == b"0123456789abcdef"
    assert plain[16:20] == struct.pack(">I", 5)
    assert plain[20:30] == b"hellowxapp"


def test_random_prefix_differs_each_time() -> None:
    key = crypto.new_encoding_aes_key()
    first = crypto.encrypt_push_message(b"same", key, "wxapp")
    assert first != crypto.encrypt_push_message(b"same", key, "wxapp")
    prefix = crypto.new_push_random()
    assert len(prefix) == 16 and prefix.isalnum()


@pytest.mark.parametrize(
    "tamper",
    [
        lambda e: e[:-4] + "AAA=",
        lambda e: "not base64!",
        lambda e: e[:20],
    ],
)
def test_decrypt_rejects_tampered_ciphertext(tamper) -> None:
    key = crypto.new_encoding_aes_key()
    encrypted = crypto.encrypt_push_message(b'{"a":1}', key, "wxapp")
    with pytest.raises(ValueError):
        crypto.decrypt_push_message(tamper(encrypted), key)


# ----- body formats -----------------------------------------------------------------------------


EVENT = {
    "ToUserName": "gh_0123456789ab",
    "FromUserName": "oSender",
    "CreateTime": 1714112445,
    "MsgType": "event",
    "Event": "wxa_media_check",
    "appid": "wx0123456789abcdef",
    "trace_id": "60f96f1d-3845297a-1976a3ae",
    "version": 2,
    "errcode": 0,
    "errmsg": "ok",
    "result": {"suggest": "risky", "label": 20002},
    "detail": [
        {"strategy": "content_model", "errcode": 0, "suggest": "risky", "label": 20002},
        {"strategy": "keyword", "errcode": 0, "suggest": "review", "label": 20002},
    ],
}


def test_xml_body_shape() -> None:
    body = push.xml_body(EVENT).decode()
    assert body.startswith(
        "<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName>"
        "<FromUserName><![CDATA[oSender]]></FromUserName><CreateTime>1714112445</CreateTime>"
        "<MsgType><![CDATA[event]]></MsgType>"
    )
    assert "<version>2</version><errcode>0</errcode><errmsg><![CDATA[ok]]></errmsg>" in body
    assert "<result><suggest><![CDATA[risky]]></suggest><label>20002</label></result>" in body
    assert body.count("<detail>") == 2  # one element per item
    assert body.endswith("</detail></xml>")
    parsed = xml_to_dict(body)
    assert parsed["result"] == {"suggest": "risky", "label": "20002"}
    assert [d["strategy"] for d in parsed["detail"]] == ["content_model", "keyword"]


def test_xml_cdata_cannot_be_broken_out_of() -> None:
    body = push.xml_body({"a": "x]]><evil/>y", "b": "<&>"})
    assert xml_to_dict(body) == {"a": "x]]><evil/>y", "b": "<&>"}


def test_json_body_is_compact_with_escaped_slashes() -> None:
    body = push.json_body({"url": "http://x/y", "nick": "微信"})
    assert body == '{"url":"http:\\/\\/x\\/y","nick":"微信"}'.encode()
    assert json.loads(body) == {"url": "http://x/y", "nick": "微信"}


def test_signed_post_modes() -> None:
    key = PUSH_AES_KEY
    plain = push.PushConfig("http://127.0.0.1:9/p", PUSH_TOKEN, format="json")
    request = push.signed_post(
        plain, PUSH_APPID, "gh_x", {"a": 1}, "oSender", 1714037059, "486452656"
    )
    assert request.query == {
        "signature": PLAIN_POST_VECTOR[2],
        "timestamp": "1714037059",
        "nonce": "486452656",
    }
    assert request.body == b'{"a":1}'
    assert request.headers["Content-Type"] == "application/json"
    assert request.full_url.startswith("http://127.0.0.1:9/p?signature=")

    secure = push.PushConfig(
        "http://127.0.0.1:9/p?x=1", PUSH_TOKEN, key, mode="secure", format="json"
    )
    request = push.signed_post(
        secure, PUSH_APPID, "gh_x", {"a": 1}, "oSender", 1714112445, "415670741"
    )
    body = json.loads(request.body)
    assert list(body) == ["ToUserName", "Encrypt"]
    assert list(request.query) == [
        "signature",
        "timestamp",
        "nonce",
        "openid",
        "encrypt_type",
        "msg_signature",
    ]
    assert request.query["signature"] == SECURE_SIGNATURE
    assert request.query["msg_signature"] == sha1_signature(
        PUSH_TOKEN, "1714112445", "415670741", body["Encrypt"]
    )
    assert request.full_url.startswith("http://127.0.0.1:9/p?x=1&signature=")
    assert receiver_decrypt(body["Encrypt"], key) == (b'{"a":1}', PUSH_APPID)


@pytest.mark.parametrize(
    "fields",
    [
        {"url": "ftp://x/p"},
        {"url": "not a url"},
        {"token": "ab"},
        {"token": "a" * 33},
        {"token": "with space"},
        {"mode": "secure"},  # no key
        {"mode": "loud", "encoding_aes_key": PUSH_AES_KEY},
        {"format": "yaml"},
        {"encoding_aes_key": "short"},
        {"retries": -1},
        {"retries": 11},
        {"timeout": 0},
    ],
)
def test_push_config_validation(fields: dict) -> None:
    config = {"url": "http://127.0.0.1:9/p", "token": PUSH_TOKEN, **fields}
    with pytest.raises(push.PushConfigError):
        push.PushConfig(**config)
