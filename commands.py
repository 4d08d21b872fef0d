"""Operator commands: `flask sessions ...`."""

from __future__ import annotations

import sys

import click
from flask import Flask, current_app
from flask.cli import AppGroup

sessions = AppGroup("sessions", help="End users' sessions.")


@sessions.command("revoke")
@click.argument("openid")
def revoke(openid: str) -> None:
    """End every session of the user with OPENID, at once on every worker and
    instance. Pass - to read the openid from stdin (keeps it out of shell history)."""
    if openid == "-":
        openid = sys.stdin.readline().strip()
    services = current_app.extensions["wx_services"]
    user_id = services.users.find_id(openid)
    if user_id is None:
        raise click.ClickException("no user has that openid")
    ended = services.sessions.revoke_user(user_id)
    click.echo(f"ended {ended} session(s) of user {user_id}")


def init_app(app: Flask) -> None:
    app.cli.add_command(sessions)
