"""The domain layer. Nothing in it imports Flask: services take their clients
and settings in their constructors (see graph.py, which wires them).

    wechat/     the WeChat adapter (HTTP client for api.weixin.qq.com)
    stores/     where state lives: Redis (sessions, session_keys, login codes,
                the access token, rate limits) and SQL (users)
    crypto/     pure cryptography: open data, sealing
    usecases/   what the HTTP layer calls: login, profile, readiness
    errors.py   the error catalogue
    graph.py    builds all of the above from settings and clients
"""
