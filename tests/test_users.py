"""UserStore against a real database (SQLite by default), without an app."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, func, select

from services.models import User
from services.users import UserStore, configure_sqlite

OPENID = "oJALH5QWt_PWW5W5LZPYCzGSrQfI"


@pytest.fixture
def engine(database_url) -> Iterator[Engine]:
    engine = create_engine(database_url)
    if engine.dialect.name == "sqlite":
        configure_sqlite(engine)
    yield engine
    with engine.begin() as conn:
        conn.execute(User.__table__.delete())
    engine.dispose()


@pytest.fixture
def users(engine) -> UserStore:
    return UserStore(engine)


def count(engine: Engine, openid: str) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).where(User.openid == openid))


def test_first_login_creates_the_user(users, engine):
    record = users.upsert_login(OPENID, None)
    assert record.id > 0
    assert record.profile_version == 0
    assert record.profile["nickName"] is None
    assert count(engine, OPENID) == 1


def test_relogin_keeps_one_row_and_the_unionid(users, engine):
    first = users.upsert_login(OPENID, "oUnionAAAAAAAAAAAAAAAAAAAAAA")
    again = users.upsert_login(OPENID, None)
    assert again.id == first.id
    assert count(engine, OPENID) == 1
    with engine.connect() as conn:
        assert conn.scalar(select(User.unionid)) == "oUnionAAAAAAAAAAAAAAAAAAAAAA"


def test_a_new_unionid_replaces_the_old(users, engine):
    users.upsert_login(OPENID, "oUnionAAAAAAAAAAAAAAAAAAAAAA")
    users.upsert_login(OPENID, "oUnionBBBBBBBBBBBBBBBBBBBBBB")
    with engine.connect() as conn:
        assert conn.scalar(select(User.unionid)) == "oUnionBBBBBBBBBBBBBBBBBBBBBB"


def test_openids_differing_only_in_case_are_different_users(users):
    a = users.upsert_login("oAbcdefghijklmnopqrstuvwxyz0", None)
    b = users.upsert_login("oabcdefghijklmnopqrstuvwxyz0", None)
    assert a.id != b.id


def test_update_profile_bumps_the_version(users):
    user = users.upsert_login(OPENID, None)
    updated = users.update_profile(user.id, {"nickName": "小明🐱𠀀", "gender": 1})
    assert updated.profile_version == 1
    assert updated.profile["nickName"] == "小明🐱𠀀"
    assert users.get(user.id).profile == updated.profile


def test_find_id_by_openid(users):
    user = users.upsert_login(OPENID, None)
    assert users.find_id(OPENID) == user.id
    assert users.find_id("oNobody") is None
