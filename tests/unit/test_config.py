"""Configuration from the environment, in one place."""

from __future__ import annotations

import json
import re

import pytest

import config
from support.constants import ROOT


def test_without_an_appid_it_runs_against_the_emulator():
    settings = config.load({})
    assert settings["DEV_MODE"] is True
    (app,) = config.wechat_apps(settings)
    assert (app.appid, app.secret) == (config.DEFAULT_APPID, config.DEFAULT_SECRET)
    assert app.push_token == config.DEV_PUSH_TOKEN
    assert settings["WECHAT_API_BASE"] == config.DEV_API_BASE
    assert settings["SESSION_TTL"] == 7 * 24 * 3600
    assert settings["SESSION_COOKIE_NAME"] == "sid"
    assert settings["SESSION_COOKIE_SECURE"] is False
    assert settings["DATABASE_URL"].startswith("sqlite:///")
    assert settings["REDIS_URL"] is None
    config.validate(settings)


def test_with_an_appid_it_runs_for_real():
    settings = config.load({"WECHAT_APPID": "wxabc", "WECHAT_SECRET": "s", "SECRET_KEY": "k"})
    assert settings["DEV_MODE"] is False
    assert settings["WECHAT_API_BASE"] == "https://api.weixin.qq.com"
    config.validate(settings)


@pytest.mark.parametrize(
    ("environ", "missing"),
    [
        ({"WECHAT_APPID": "wxabc"}, "WECHAT_SECRET and SECRET_KEY"),
        ({"WECHAT_APPID": "wxabc", "SECRET_KEY": "k"}, "WECHAT_SECRET"),
        ({"WECHAT_APPID": "wxabc", "WECHAT_SECRET": "s"}, "SECRET_KEY"),
    ],
)
def test_production_without_secrets_refuses_to_start(environ, missing):
    with pytest.raises(config.ConfigError, match=missing):
        config.validate(config.load(environ))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("postgres://u:p@h:5432/d", "postgresql+psycopg://u:p@h:5432/d"),
        ("postgresql://u@h/d", "postgresql+psycopg://u@h/d"),
        ("mysql://root@127.0.0.1/test", "mysql+pymysql://root@127.0.0.1/test"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
    ],
)
def test_database_urls_of_every_platform(raw, expected):
    assert config.load({"DATABASE_URL": raw})["DATABASE_URL"] == expected


@pytest.mark.parametrize(
    "environ",
    [
        {"SESSION_TTL": "a week"},
        {"SESSION_TTL": "0"},
        {"SESSION_TTL": "100", "SESSION_RENEW_INTERVAL": "100"},
        {"SESSIONS_PER_USER": "0"},
        {"WECHAT_READ_TIMEOUT": "fast"},
        {"LOG_FORMAT": "xml"},
        {"METRICS_TOKEN": "too-short"},
        {"METRICS_TOKEN": "has a space in the middle"},
    ],
)
def test_nonsense_values_are_refused(environ):
    with pytest.raises(config.ConfigError):
        config.validate(config.load(environ))


def test_flags_and_numbers():
    settings = config.load(
        {"SESSION_COOKIE_SECURE": "1", "SESSION_TTL": "3600", "SESSION_COOKIE_NAME": "wx"}
    )
    assert settings["SESSION_COOKIE_SECURE"] is True
    assert settings["SESSION_TTL"] == 3600
    assert settings["SESSION_RENEW_INTERVAL"] == 360
    assert settings["SESSION_COOKIE_NAME"] == "wx"


def test_every_variable_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    undocumented = sorted(n for n in config.variables() if f"| `{n}`" not in readme)
    assert not undocumented


def test_gunicorn_reads_exactly_the_variables_config_names_for_it():
    source = (ROOT / "gunicorn.conf.py").read_text()
    read = set(re.findall(r"environ\.get\(\s*[\"']([A-Z_]+)[\"']", source))
    assert read == set(config.GUNICORN_VARIABLES)


@pytest.mark.parametrize(("ttl", "interval"), [(2, 1), (5, 1), (100, 10), (10**7, 3600)])
def test_the_renew_interval_default_fits_any_sensible_ttl(ttl, interval):
    settings = config.load({"SESSION_TTL": str(ttl)})
    assert settings["SESSION_RENEW_INTERVAL"] == interval
    config.validate(settings)


APPS = [
    {"appid": "wxmain0000000000a", "secret": "s1", "push_token": "tok1"},
    {"appid": "wxlite0000000000b", "secret": "s2"},
    {"appid": "wxoa00000000000c", "secret": "s3", "kind": "official_account"},
]


def test_several_apps_from_json_the_first_is_the_default():
    settings = config.load({"WECHAT_APPS": json.dumps(APPS), "SECRET_KEY": "k"})
    config.validate(settings)
    apps = config.wechat_apps(settings)
    assert [app.appid for app in apps] == [a["appid"] for a in APPS]
    assert [app.kind for app in apps] == ["miniprogram", "miniprogram", "official_account"]
    assert apps[0].push_token == "tok1" and apps[1].push_token == ""
    assert settings["DEV_MODE"] is False
    assert "s1" not in repr(apps)  # secrets stay out of logs and tracebacks


def test_several_apps_from_a_file(tmp_path):
    path = tmp_path / "apps.json"
    path.write_text(json.dumps(APPS))
    settings = config.load({"WECHAT_APPS": str(path), "SECRET_KEY": "k"})
    assert len(config.wechat_apps(settings)) == 3


@pytest.mark.parametrize(
    ("apps", "message"),
    [
        ("not json", "neither JSON nor a readable file"),
        ("[", "not valid JSON"),
        ("[]", "non-empty JSON list"),
        ('{"appid": "wxa"}', "neither JSON"),
        ("[1]", "must be an object"),
        ('[{"appid": "wxa"}]', "needs an appid and a secret"),
        ('[{"appid": "wxa", "secret": "s", "colour": "red"}]', "unknown setting"),
        ('[{"appid": "wxa", "secret": "s", "kind": "game"}]', "kind must be one of"),
        ('[{"appid": "wxa", "secret": 5}]', "every setting is a string"),
        ('[{"appid": "wx a", "secret": "s"}]', "appid must be"),
        ('[{"appid": "wxa", "secret": "s", "cookie_samesite": "lax"}]', "cookie_samesite"),
        ('[{"appid": "wxa", "secret": "s", "push_token": "a b"}]', "push Token"),
        ('[{"appid": "wxa", "secret": "s", "push_token": "ok1", "push_aes_key": "x"}]', "43"),
        ('[{"appid": "wxa", "secret": "s"}, {"appid": "wxa", "secret": "t"}]', "appid twice"),
    ],
)
def test_bad_apps_are_refused_with_a_clear_message(apps, message):
    with pytest.raises(config.ConfigError, match=message):
        config.validate(config.load({"WECHAT_APPS": apps, "SECRET_KEY": "k"}))


def test_apps_and_a_single_appid_are_not_both_set():
    environ = {"WECHAT_APPS": json.dumps(APPS), "WECHAT_APPID": "wxa", "SECRET_KEY": "k"}
    with pytest.raises(config.ConfigError, match="not both"):
        config.validate(config.load(environ))


def test_several_apps_need_a_secret_key():
    with pytest.raises(config.ConfigError, match="SECRET_KEY"):
        config.validate(config.load({"WECHAT_APPS": json.dumps(APPS)}))


def test_logs_and_metrics_settings():
    assert (config.load({})["LOG_FORMAT"], config.load({})["METRICS_TOKEN"]) == ("text", "")
    settings = config.load({"LOG_FORMAT": "JSON", "METRICS_TOKEN": "a-long-enough-token-123"})
    config.validate(settings)
    assert (settings["LOG_FORMAT"], settings["METRICS_TOKEN"]) == (
        "json",
        "a-long-enough-token-123",
    )
