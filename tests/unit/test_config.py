"""Configuration from the environment, in one place."""

from __future__ import annotations

import re

import pytest

import config
from support.constants import ROOT


def test_without_an_appid_it_runs_against_the_emulator():
    settings = config.load({})
    assert settings["DEV_MODE"] is True
    assert settings["WECHAT_APPID"] == config.DEFAULT_APPID
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
