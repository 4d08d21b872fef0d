"""The asynchronous side of the emulator: media checks that finish later and the pushes
that report them, plus the control-driven pushes (URL verification, user events, replays).

Records live in EmulatorState behind its one lock; this module only sequences the work and
does the HTTP, never holding the lock while a request is in flight. Every piece of work
carries the state's generation: after a reset its results are dropped.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from . import crypto, push
from .errors import ControlError

if TYPE_CHECKING:
    from .state import EmulatorState


class Deliveries:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    # ----- pushing a message, with WeChat's retries ---------------------------------------------

    def deliver(
        self,
        appid: str | None,
        message: dict[str, Any],
        *,
        trace_id: str | None = None,
        redelivery_of: int | None = None,
    ) -> dict[str, Any] | None:
        """POST `message` to the app's push URL, signed (and encrypted) per its config.

        A reply other than `success` or empty (or none within the timeout) is retried up to
        `retries` times. Each retry is signed afresh (new timestamp and nonce, and new
        ciphertext) around the same message [UNVERIFIED: WeChat does not say]."""
        appid, config, to_user, sender, generation = self.state.push_target(appid)
        push_id = self.state.open_push(
            generation,
            appid,
            "event",
            config,
            event=message,
            trace_id=trace_id,
            redelivery_of=redelivery_of,
        )
        if push_id is None:
            return None
        accepted = False
        for _ in range(1 + config.retries):
            request = push.signed_post(
                config, appid, to_user, message, sender, int(self.state.now())
            )
            answer = self._attempt(generation, push_id, request, config.timeout)
            if answer is None:
                return None
            accepted = answer.accepted
            if accepted:
                break
        return self.state.close_push(generation, push_id, accepted)

    def _attempt(
        self, generation: int, push_id: int, request: push.Outgoing, timeout: float
    ) -> push.Answer | None:
        """Log the request, send it, log the answer. None when a reset intervened."""
        index = self.state.push_sent(generation, push_id, request)
        if index is None:
            return None
        answer = push.send(request, timeout)
        self.state.push_answered(generation, push_id, index, answer)
        return answer

    def verify(self, appid: str | None) -> dict[str, Any]:
        """The URL verification handshake: did the service answer echostr unchanged?"""
        appid, config, _, _, generation = self.state.push_target(appid)
        echostr = crypto.new_echostr()
        push_id = self.state.open_push(
            generation, appid, "verify", config, event=None, echostr=echostr
        )
        request = push.verification_get(config, int(self.state.now()), echostr)
        answer = self._attempt(generation, push_id, request, config.timeout) if push_id else None
        if push_id is None or answer is None:
            return {"ok": False, "echostr": echostr, "push": None}
        ok = answer.status == 200 and answer.body == echostr.encode("ascii")
        record = self.state.close_push(generation, push_id, ok)
        return {"ok": ok, "echostr": echostr, **answer.public(), "push": record}

    def replay(self, push_id: int, attempt: int = 0) -> dict[str, Any] | None:
        """Send a logged request again byte for byte: same query (timestamp, nonce,
        signatures), headers and body. Once, without retries: this is an attacker's (or a
        confused proxy's) replay, not WeChat's."""
        original = self.state.push_record(push_id)
        if not -len(original.attempts) <= attempt < len(original.attempts):
            raise ControlError(f"push {push_id} has no attempt {attempt}", status=404)
        request = original.attempts[attempt].request
        appid, config, _, _, generation = self.state.push_target(original.appid)
        new_id = self.state.open_push(
            generation,
            appid,
            original.kind,
            config,
            event=original.event,
            replay_of=push_id,
            trace_id=original.trace_id,
            echostr=original.echostr,
        )
        if new_id is None:
            return None
        answer = self._attempt(generation, new_id, request, config.timeout)
        if answer is None:
            return None
        if original.kind == "verify":
            ok = answer.status == 200 and answer.body == (original.echostr or "").encode()
        else:
            ok = answer.accepted
        return self.state.close_push(generation, new_id, ok)

    def redeliver(self, push_id: int) -> dict[str, Any] | None:
        """Deliver a logged event again as WeChat's duplicate would be: the same message
        (same CreateTime), freshly signed."""
        original = self.state.push_record(push_id)
        if original.kind != "event" or original.event is None:
            raise ControlError(f"push {push_id} is a URL verification, not an event", status=409)
        assert original.event is not None
        return self.deliver(
            original.appid,
            original.event,
            trace_id=original.trace_id,
            redelivery_of=push_id,
        )

    # ----- media checks -------------------------------------------------------------------------

    def start_media_check(self, trace_id: str, generation: int) -> None:
        threading.Thread(
            target=self._run_media_check,
            args=(trace_id, generation),
            name=f"media-check-{trace_id}",
            daemon=True,
        ).start()

    def _run_media_check(self, trace_id: str, generation: int) -> None:
        state = self.state
        check = state.await_media_turn(trace_id, generation)
        if check is None:
            return
        fetched = push.fetch_media(check.media_url)
        event = state.media_check_event(trace_id, generation, fetched.data, fetched.error)
        if event is None:
            return
        push_id: int | None = None
        error: str | None = None
        try:
            record = self.deliver(check.appid, event, trace_id=trace_id)
            push_id = record["id"] if record else None
        except Exception as exc:  # no push configuration, or the app is gone
            error = getattr(exc, "message", None) or str(exc)
        state.finish_media_check(trace_id, generation, push_id, error)
