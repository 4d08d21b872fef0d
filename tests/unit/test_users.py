"""UserStore against a real database (SQLite by default), without an app."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, create_engine, event, func, select, text

from infra import database
from services.stores.models import User
from services.stores.users import UserStore

OPENID = "oJALH5QWt_PWW5W5LZPYCzGSrQfI"


@pytest.fixture
def engine(database_url) -> Iterator[Engine]:
    engine = create_engine(database_url, **database.engine_options(database_url, "/tmp"))
    database.configure(engine)
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


def test_concurrent_first_logins_make_exactly_one_row(users, engine):
    barrier = threading.Barrier(40)

    def first_login(_: int) -> int:
        barrier.wait()
        return users.upsert_login(OPENID, "oUnionCCCCCCCCCCCCCCCCCCCCCC").id

    with ThreadPoolExecutor(max_workers=40) as pool:
        ids = set(pool.map(first_login, range(40)))
    assert len(ids) == 1
    assert count(engine, OPENID) == 1


def test_every_utf8_character_round_trips(users):
    nickname = "🐱𠀀👨‍👩‍👧‍👦 ẞ Ǆ 中文 العربية \\u200b"
    user = users.upsert_login(OPENID, None)
    users.update_profile(user.id, {"nickName": nickname, "city": "𝔊𝔲𝔞𝔫𝔤𝔷𝔥𝔬𝔲"})
    stored = users.get(user.id).profile
    assert stored["nickName"] == nickname and stored["city"] == "𝔊𝔲𝔞𝔫𝔤𝔷𝔥𝔬𝔲"


def test_columns_hold_what_wechat_sends(users):
    user = users.upsert_login("o" + "x" * 63, "u" + "y" * 63)
    avatar = "https://thirdwx.qlogo.cn/mmopen/vi_32/" + "A" * 980
    updated = users.update_profile(
        user.id,
        {
            "avatarUrl": avatar,
            "nickName": "名" * 255,
            "phoneNumber": "+86 138 0013 8000",
            "countryCode": "86",
        },
    )
    assert updated.profile["avatarUrl"] == avatar
    assert updated.profile["nickName"] == "名" * 255


def test_a_transaction_that_lost_a_lock_wait_is_retried(engine, users):
    if engine.dialect.name not in {"mysql", "mariadb"}:
        pytest.skip("InnoDB lock wait timeouts are a MySQL/MariaDB matter")
    user = users.upsert_login(OPENID, None)

    @event.listens_for(engine, "connect")
    def impatient(dbapi_connection, _record):
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET SESSION innodb_lock_wait_timeout = 1")

    engine.dispose()  # every new connection gives up on a lock after 1 s
    blocker = engine.connect()
    held = blocker.begin()
    blocker.execute(select(User).where(User.id == user.id).with_for_update())
    release = threading.Timer(1.5, held.commit)
    release.start()
    try:
        updated = users.update_profile(user.id, {"nickName": "after the wait"})
    finally:
        release.join()
        blocker.close()
    assert updated.profile["nickName"] == "after the wait"


def test_mysql_schema_is_utf8mb4_and_openids_are_case_sensitive(engine):
    if engine.dialect.name not in {"mysql", "mariadb"}:
        pytest.skip("a MySQL/MariaDB schema matter")
    with engine.connect() as conn:
        table = conn.execute(
            text(
                "SELECT table_collation FROM information_schema.tables "
                "WHERE table_schema = DATABASE() AND table_name = 'users'"
            )
        ).scalar()
        columns = dict(
            conn.execute(
                text(
                    "SELECT column_name, collation_name FROM information_schema.columns "
                    "WHERE table_schema = DATABASE() AND table_name = 'users'"
                )
            ).all()
        )
        charset = conn.execute(text("SELECT @@character_set_connection")).scalar()
    assert table == "utf8mb4_unicode_ci"
    assert columns["nick_name"] == "utf8mb4_unicode_ci"
    assert columns["openid"] == columns["unionid"] == "ascii_bin"
    assert charset == "utf8mb4"
