"""Operator commands: `flask sessions ...`, `flask users ...`, `flask avatars ...`."""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import AppGroup

from blueprints import account_service, apps, avatar_service, login_service
from services.errors import NotFound

sessions = AppGroup("sessions", help="End users' sessions.")
users = AppGroup("users", help="Delete users.")
avatars = AppGroup("avatars", help="Avatars waiting for WeChat's content check.")


def read_openid(openid: str) -> str:
    """OPENID, or with - the first line of stdin (keeps it out of shell history)."""
    return sys.stdin.readline().strip() if openid == "-" else openid


APPID = click.option("--appid", help="the app the openid is of (default: the first app)")


@sessions.command("revoke")
@click.argument("openid")
@APPID
def revoke(openid: str, appid: str | None) -> None:
    """End every session of the user with OPENID (in every app), at once on
    every worker and instance. Pass - to read the openid from stdin."""
    app = apps().get(appid)
    try:
        account_id, ended = login_service().revoke_user(app.appid, read_openid(openid))
    except NotFound:
        raise click.ClickException("no user has that openid") from None
    click.echo(f"ended {ended} session(s) of account {account_id}")


@users.command("delete")
@click.argument("openid")
@APPID
def delete(openid: str, appid: str | None) -> None:
    """Delete the account of the user with OPENID as DELETE /user does: erase
    the data, end every session, free the openids. Idempotent. Pass - to read
    it from stdin."""
    app = apps().get(appid)
    if account_service().delete_by_openid(app.appid, read_openid(openid), reason="operator"):
        click.echo("deleted")
    else:
        click.echo("no user has that openid (nothing to delete)")


@avatars.command("expire")
def expire() -> None:
    """Count uploads whose verdict is overdue (AVATAR_REVIEW_TIMEOUT) as refused.
    Uploads do this too; run it from a scheduler if uploads are rare."""
    total = 0
    while count := avatar_service().expire_reviews():
        total += count
    click.echo(f"expired {total} pending avatar(s)")


def init_app(app: Flask) -> None:
    for group in (sessions, users, avatars):
        app.cli.add_command(group)
