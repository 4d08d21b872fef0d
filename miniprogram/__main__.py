"""python -m miniprogram [--service URL] [--emulator URL] COMMAND

Commands: login, info, check, bindinfo, bindphone, profile, avatar, delete,
logout [--all]. The
session lives in a storage file
(default instance/miniprogram-storage.json), as it would in wx storage.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import requests

from miniprogram.client import MiniProgram, ServiceError
from miniprogram.storage import Storage

DEFAULT_STORAGE = Path(__file__).resolve().parent.parent / "instance" / "miniprogram-storage.json"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m miniprogram", description=__doc__.splitlines()[0])
    p.add_argument("--service", default="http://127.0.0.1:8000")
    p.add_argument("--emulator", default="http://127.0.0.1:5100")
    p.add_argument("--storage", type=Path, default=DEFAULT_STORAGE)
    p.add_argument("--bearer", action="store_true", help="send the token, not the cookie")
    p.add_argument("--appid", help="the mini program's appid, sent as X-WX-AppId")
    commands = p.add_subparsers(dest="command", required=True)
    commands.add_parser("login", help="wx.login, then POST /oauth/login; store the cookie")
    commands.add_parser("info", help="GET /user/info with the stored cookie")
    commands.add_parser("check", help="GET /oauth/check: is the session_key still valid?")
    bindinfo = commands.add_parser("bindinfo", help="bind a profile (as wx.getUserProfile)")
    bindinfo.add_argument("--nick", default="小程序用户🐱")
    bindinfo.add_argument("--avatar", default="https://thirdwx.qlogo.cn/mmopen/vi_32/demo/132")
    bindinfo.add_argument("--gender", type=int, default=0)
    bindinfo.add_argument("--city", default="")
    bindphone = commands.add_parser("bindphone", help="bind a phone number")
    bindphone.add_argument("--phone", default="13800138000")
    bindphone.add_argument("--legacy", action="store_true", help="encryptedData, not a code")
    profile = commands.add_parser("profile", help="PUT /user/profile (a profile page)")
    profile.add_argument("--nick", help="the nickname, as <input type=nickname> gives it")
    profile.add_argument("--gender", type=int, choices=(0, 1, 2))
    profile.add_argument("--city")
    profile.add_argument("--province")
    profile.add_argument("--country")
    avatar = commands.add_parser("avatar", help="POST /user/avatar (chooseAvatar's file)")
    avatar.add_argument("file", type=Path, help="a JPEG, PNG, WebP or GIF image")
    commands.add_parser("delete", help="DELETE /user: delete the account")
    logout = commands.add_parser("logout", help="POST /oauth/logout")
    logout.add_argument("--all", action="store_true", help="end every session of the user")
    return p


def run(args: argparse.Namespace, app: MiniProgram) -> object:
    if args.command == "login":
        data = app.login()
        return {"loggedIn": True, "expiresIn": data["expiresIn"], "storage": str(args.storage)}
    if args.command == "info":
        return app.info()
    if args.command == "check":
        return app.check()
    if args.command == "bindinfo":
        return app.bind_info(
            {
                "nickName": args.nick,
                "avatarUrl": args.avatar,
                "gender": args.gender,
                "city": args.city,
                "province": "",
                "country": "",
                "language": "zh_CN",
            }
        )
    if args.command == "bindphone":
        return app.bind_phone(args.phone, legacy=args.legacy)
    if args.command == "profile":
        fields = {
            "nickName": args.nick,
            "gender": args.gender,
            "city": args.city,
            "province": args.province,
            "country": args.country,
        }
        return app.set_profile({k: v for k, v in fields.items() if v is not None})
    if args.command == "avatar":
        return app.upload_avatar(args.file)
    if args.command == "delete":
        return app.delete()
    return app.logout(everywhere=args.all)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    app = MiniProgram(
        args.service, args.emulator, Storage(args.storage), use_bearer=args.bearer, appid=args.appid
    )
    try:
        result = run(args, app)
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except requests.RequestException as exc:
        print(
            f"error: cannot reach the service or the emulator ({type(exc).__name__})",
            file=sys.stderr,
        )
        return 2
    finally:
        app.close()
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
