"""AccountStore against a real database (each configured backend), without an
app: identities per app, accounts linked by unionid, merges, races."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, create_engine, event, func, select, text

from infra import database
from services.stores.accounts import AccountStore
from services.stores.models import Account, Base, Identity

OPENID = "oJALH5QWt_PWW5W5LZPYCzGSrQfI"
UNION = "oUnionAAAAAAAAAAAAAAAAAAAAAA"


@pytest.fixture
def engine(database_url) -> Iterator[Engine]:
    engine = create_engine(database_url, **database.engine_options(database_url, "/tmp"))
    database.configure(engine)
    empty(engine)  # the multi-process tier's instances leave their users behind
    yield engine
    empty(engine)
    engine.dispose()


def empty(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture
def accounts(engine) -> AccountStore:
    return AccountStore(engine)


def count(engine: Engine, model) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(model))


def test_first_login_creates_an_account_and_an_identity(accounts, engine):
    logged = accounts.log_in("wxa", OPENID, None)
    assert logged.account.id > 0 and logged.identity.account_id == logged.account.id
    assert (logged.identity.appid, logged.identity.openid) == ("wxa", OPENID)
    assert logged.account.profile_version == 0
    assert logged.account.profile["nickName"] is None
    assert (count(engine, Account), count(engine, Identity)) == (1, 1)


def test_relogin_keeps_one_identity_and_the_unionid(accounts, engine):
    first = accounts.log_in("wxa", OPENID, UNION)
    again = accounts.log_in("wxa", OPENID, None)
    assert (again.identity.id, again.account.id) == (first.identity.id, first.account.id)
    assert (count(engine, Account), count(engine, Identity)) == (1, 1)
    with engine.connect() as conn:
        assert conn.scalar(select(Account.unionid)) == UNION


def test_a_new_unionid_replaces_the_old(accounts, engine):
    accounts.log_in("wxa", OPENID, UNION)
    accounts.log_in("wxa", OPENID, "oUnionBBBBBBBBBBBBBBBBBBBBBB")
    with engine.connect() as conn:
        assert conn.scalar(select(Account.unionid)) == "oUnionBBBBBBBBBBBBBBBBBBBBBB"


def test_openids_differing_only_in_case_are_different_people(accounts):
    a = accounts.log_in("wxa", "oAbcdefghijklmnopqrstuvwxyz0", None)
    b = accounts.log_in("wxa", "oabcdefghijklmnopqrstuvwxyz0", None)
    assert a.account.id != b.account.id


def test_without_a_unionid_each_app_is_its_own_account(accounts):
    a = accounts.log_in("wxa", OPENID, None)
    b = accounts.log_in("wxb", OPENID, None)
    assert a.identity.id != b.identity.id and a.account.id != b.account.id


def test_the_same_unionid_in_two_apps_is_one_account(accounts, engine):
    a = accounts.log_in("wxa", "oInAppA000000000000000000000", UNION)
    b = accounts.log_in("wxb", "oInAppB000000000000000000000", UNION)
    assert a.account.id == b.account.id and a.identity.id != b.identity.id
    assert [i.appid for i in accounts.identities(a.account.id)] == ["wxa", "wxb"]
    assert (count(engine, Account), count(engine, Identity)) == (1, 2)


def test_a_late_unionid_merges_two_accounts_into_the_older(accounts, engine):
    older = accounts.log_in("wxa", "oInAppA000000000000000000000", None)
    accounts.update_profile(older.account.id, {"nickName": "Older", "phoneNumber": "1"})
    newer = accounts.log_in("wxb", "oInAppB000000000000000000000", UNION)
    accounts.update_profile(
        newer.account.id,
        {"nickName": "Newer", "city": "Shenzhen", "phoneNumber": "2", "countryCode": "86"},
    )
    accounts.update(newer.account.id, {"avatar_url": "https://x/a.jpg", "avatar_hash": "a" * 64})
    merged = accounts.log_in("wxa", "oInAppA000000000000000000000", UNION)

    assert merged.account.id == older.account.id
    assert merged.merged == (newer.account.id,)
    profile = merged.account.profile
    # The survivor keeps what it has; each missing group comes whole from the other.
    assert profile["nickName"] == "Older"
    assert (profile["phoneNumber"], profile["countryCode"]) == ("1", None)
    assert profile["city"] == "Shenzhen"
    assert profile["avatarUrl"] == "https://x/a.jpg"
    assert merged.orphans == ()
    assert accounts.get(newer.account.id) is None
    assert {i.appid for i in accounts.identities(older.account.id)} == {"wxa", "wxb"}
    assert merged.account.profile_version > max(older.account.profile_version, 2)
    with engine.connect() as conn:
        assert conn.scalar(select(Account.unionid)) == UNION


def test_a_merge_names_the_avatars_no_one_shows_any_more(accounts):
    older = accounts.log_in("wxa", "oInAppA000000000000000000000", None)
    accounts.update(older.account.id, {"avatar_url": "u1", "avatar_hash": "1" * 64})
    newer = accounts.log_in("wxb", "oInAppB000000000000000000000", UNION)
    accounts.update(newer.account.id, {"avatar_url": "u2", "avatar_hash": "2" * 64})
    merged = accounts.log_in("wxa", "oInAppA000000000000000000000", UNION)
    assert merged.account.profile["avatarUrl"] == "u1"
    assert merged.orphans == ("2" * 64,)


@pytest.mark.parametrize("threads", [40])
def test_concurrent_first_logins_of_one_identity_make_one_of_each(accounts, engine, threads):
    barrier = threading.Barrier(threads)

    def first_login(_: int) -> tuple[int, int]:
        barrier.wait()
        logged = accounts.log_in("wxa", OPENID, UNION)
        return logged.identity.id, logged.account.id

    with ThreadPoolExecutor(max_workers=threads) as pool:
        ids = set(pool.map(first_login, range(threads)))
    assert len(ids) == 1
    assert (count(engine, Account), count(engine, Identity)) == (1, 1)


def test_concurrent_first_logins_of_one_person_in_two_apps_make_one_account(accounts, engine):
    barrier = threading.Barrier(20)

    def first_login(n: int) -> int:
        barrier.wait()
        appid = "wxa" if n % 2 else "wxb"
        return accounts.log_in(appid, f"oPersonIn{appid}000000000000000", UNION).account.id

    with ThreadPoolExecutor(max_workers=20) as pool:
        account_ids = set(pool.map(first_login, range(20)))
    assert len(account_ids) == 1
    assert (count(engine, Account), count(engine, Identity)) == (1, 2)


def test_update_profile_bumps_the_version_only_on_a_change(accounts):
    account = accounts.log_in("wxa", OPENID, None).account
    updated = accounts.update_profile(account.id, {"nickName": "小明🐱𠀀", "gender": 1})
    assert updated.profile_version == 1
    assert updated.profile["nickName"] == "小明🐱𠀀"
    assert accounts.get(account.id).profile == updated.profile
    same = accounts.update_profile(account.id, {"nickName": "小明🐱𠀀"})
    assert same.profile_version == 1


def test_find_identity_by_app_and_openid(accounts):
    logged = accounts.log_in("wxa", OPENID, None)
    assert accounts.find_identity("wxa", OPENID) == logged.identity
    assert accounts.find_identity("wxb", OPENID) is None
    assert accounts.find_identity("wxa", "oNobody") is None


def test_deleting_removes_the_account_and_its_identities(accounts, engine):
    a = accounts.log_in("wxa", "oInAppA000000000000000000000", UNION)
    accounts.log_in("wxb", "oInAppB000000000000000000000", UNION)
    assert accounts.delete(a.account.id, "user").id == a.account.id
    assert (count(engine, Account), count(engine, Identity)) == (0, 0)
    assert accounts.delete(a.account.id, "user") is None


def test_deleting_one_identity_says_how_many_are_left(accounts):
    a = accounts.log_in("wxa", "oInAppA000000000000000000000", UNION)
    b = accounts.log_in("wxb", "oInAppB000000000000000000000", UNION)
    assert accounts.delete_identity(b.identity.id) == 1
    assert accounts.delete_identity(a.identity.id) == 0
    assert accounts.delete_identity(a.identity.id) == 0


def test_every_utf8_character_round_trips(accounts):
    nickname = "🐱𠀀👨‍👩‍👧‍👦 ẞ Ǆ 中文 العربية \\u200b"
    account = accounts.log_in("wxa", OPENID, None).account
    accounts.update_profile(account.id, {"nickName": nickname, "city": "𝔊𝔲𝔞𝔫𝔤𝔷𝔥𝔬𝔲"})
    stored = accounts.get(account.id).profile
    assert stored["nickName"] == nickname and stored["city"] == "𝔊𝔲𝔞𝔫𝔤𝔷𝔥𝔬𝔲"


def test_columns_hold_what_wechat_sends(accounts):
    account = accounts.log_in("w" * 32, "o" + "x" * 63, "u" + "y" * 63).account
    avatar = "https://thirdwx.qlogo.cn/mmopen/vi_32/" + "A" * 980
    updated = accounts.update_profile(
        account.id,
        {
            "avatarUrl": avatar,
            "nickName": "名" * 255,
            "phoneNumber": "+86 138 0013 8000",
            "countryCode": "86",
        },
    )
    assert updated.profile["avatarUrl"] == avatar
    assert updated.profile["nickName"] == "名" * 255


def test_a_transaction_that_lost_a_lock_wait_is_retried(engine, accounts):
    if engine.dialect.name not in {"mysql", "mariadb"}:
        pytest.skip("InnoDB lock wait timeouts are a MySQL/MariaDB matter")
    account = accounts.log_in("wxa", OPENID, None).account

    @event.listens_for(engine, "connect")
    def impatient(dbapi_connection, _record):
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET SESSION innodb_lock_wait_timeout = 1")

    engine.dispose()  # every new connection gives up on a lock after 1 s
    blocker = engine.connect()
    held = blocker.begin()
    blocker.execute(select(Account).where(Account.id == account.id).with_for_update())
    release = threading.Timer(1.5, held.commit)
    release.start()
    try:
        updated = accounts.update_profile(account.id, {"nickName": "after the wait"})
    finally:
        release.join()
        blocker.close()
    assert updated.profile["nickName"] == "after the wait"


def test_mysql_schema_is_utf8mb4_and_wechat_ids_are_case_sensitive(engine):
    if engine.dialect.name not in {"mysql", "mariadb"}:
        pytest.skip("a MySQL/MariaDB schema matter")

    def collations(table: str) -> dict[str, str]:
        rows = conn.execute(
            text(
                "SELECT column_name, collation_name FROM information_schema.columns "
                "WHERE table_schema = DATABASE() AND table_name = :table"
            ),
            {"table": table},
        )
        return dict(rows.all())

    with engine.connect() as conn:
        table = conn.execute(
            text(
                "SELECT table_collation FROM information_schema.tables "
                "WHERE table_schema = DATABASE() AND table_name = 'accounts'"
            )
        ).scalar()
        accounts, identities = collations("accounts"), collations("identities")
        charset = conn.execute(text("SELECT @@character_set_connection")).scalar()
    assert table == "utf8mb4_unicode_ci"
    assert accounts["nick_name"] == "utf8mb4_unicode_ci"
    assert accounts["unionid"] == identities["openid"] == identities["appid"] == "ascii_bin"
    assert charset == "utf8mb4"


def test_a_database_error_does_not_quote_what_was_sent(engine):
    """An unexpected database error is logged with its text: the statement's
    values (an openid here) must not be in it."""
    identity = {"account_id": 1, "appid": "wxa", "openid": OPENID}
    with pytest.raises(Exception) as failed, engine.begin() as conn:
        conn.execute(text("INSERT INTO identities_gone (openid) VALUES (:openid)"), identity)
    assert OPENID not in str(failed.value)
