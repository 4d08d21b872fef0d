"""Operator commands: `flask sessions ...`."""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import AppGroup

from blueprints import login_service
from services.errors import NotFound

sessions = AppGroup("sessions", help="End users' sessions.")


@sessions.command("revoke")
@click.argument("openid")
def revoke(openid: str) -> None:
    """End every session of the user with OPENID, at once on every worker and
    instance. Pass - to read the openid from stdin (keeps it out of shell history)."""
    if openid == "-":
        openid = sys.stdin.readline().strip()
    try:
        user_id, ended = login_service().revoke_user(openid)
    except NotFound:
        raise click.ClickException("no user has that openid") from None
    click.echo(f"ended {ended} session(s) of user {user_id}")


def init_app(app: Flask) -> None:
    app.cli.add_command(sessions)
