"""What the services report about themselves, as a small object handed in
through their constructors (services/graph.py). This base reports nothing;
infra/metrics.py's Prometheus implementation counts. Services never see
prometheus_client, Flask, or the request."""

from __future__ import annotations


class Telemetry:
    def login(self, outcome: str) -> None:
        """One login: "new", "shared" (de-duplication), "replayed" (the same
        code again) or the error slug it ended with."""

    def wechat_call(self, api: str, errcode: str, seconds: float) -> None:
        """One HTTP exchange with WeChat: the errcode, or what went wrong
        before there was one: timeout, unreachable, or bad_reply (an HTTP
        error status, or a body that is not a JSON object with an integer errcode)."""

    def token_refresh(self, appid: str) -> None:
        """This process fetched a new access_token."""

    def redis_error(self, kind: str) -> None:
        """unreachable, error (Redis answered one) or failing_fast (an outage's pause)."""


NO_TELEMETRY = Telemetry()
