"""What a bind stores comes from the client's decrypted data: text a
database cannot keep as sent is payload_invalid, never a database error
(found by tests/fuzz: a lone surrogate broke SQLite's UTF-8 encoding, NUL is
refused by PostgreSQL)."""

from __future__ import annotations

import pytest

from services import errors
from services.usecases.profile import phone_changes, profile_changes, unionid_of

UNSTORABLE = ["\ud800", "a\udfffb", "a\x00b", "\x00"]


@pytest.mark.parametrize("value", UNSTORABLE)
@pytest.mark.parametrize("name", ["nickName", "avatarUrl", "city", "language"])
def test_profile_text_that_cannot_be_stored_is_invalid(name, value):
    with pytest.raises(errors.PayloadInvalid):
        profile_changes({name: value}, {})


@pytest.mark.parametrize("value", UNSTORABLE)
@pytest.mark.parametrize("name", ["phoneNumber", "purePhoneNumber", "countryCode"])
def test_phone_text_that_cannot_be_stored_is_invalid(name, value):
    payload = {
        "phoneNumber": "+8613800138000",
        "purePhoneNumber": "13800138000",
        "countryCode": "86",
        name: value,
    }
    with pytest.raises(errors.PayloadInvalid):
        phone_changes(payload)


@pytest.mark.parametrize("value", UNSTORABLE)
def test_a_unionid_that_cannot_be_stored_is_invalid(value):
    with pytest.raises(errors.PayloadInvalid):
        unionid_of({"unionId": value})


def test_every_real_character_is_still_kept():
    changes = profile_changes({"nickName": "小明🐱𠀀\u202e", "city": "Zürich"}, {})
    assert changes == {"nickName": "小明🐱𠀀\u202e", "city": "Zürich"}
