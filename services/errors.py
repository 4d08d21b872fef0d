"""The error catalogue. Each domain error carries the HTTP status, stable slug
and numeric code it becomes in the JSON error shape `{"code", "error", "message"}`.

Services raise these; blueprints/errors.py renders them. Messages are written
for the mini program developer and never contain a session_key, openid,
unionid, access_token or the app secret. The README's error table is checked
against this module by a test.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ServiceError(Exception):
    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal_error"
    code: ClassVar[int] = 5000
    message: ClassVar[str] = "The service failed unexpectedly; the failure was logged."
    # Seconds a client should wait before trying again (Retry-After): 429s
    # and the 503s worth retrying soon say so, nothing else does.
    retry_after_default: ClassVar[int | None] = None
    # WWW-Authenticate, for the 401s that say which credential they want.
    challenge: ClassVar[str | None] = None

    def __init__(
        self,
        message: str | None = None,
        *,
        retry_after: int | None = None,
        data: Any = None,
    ):
        self.detail = message or self.message
        self.retry_after = retry_after or self.retry_after_default
        self.data = data
        super().__init__(self.detail)

    def to_dict(self) -> dict[str, Any]:
        body = {"code": self.code, "error": self.slug, "message": self.detail}
        if self.data is not None:
            body["data"] = self.data
        return body

    def headers(self) -> dict[str, str]:
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after else {}
        if self.challenge:
            headers["WWW-Authenticate"] = self.challenge
        return headers


# -- the client sent something we cannot use ---------------------------------


class InvalidBody(ServiceError):
    status, slug, code = 400, "invalid_body", 1001
    message = "The request body must be a JSON object or form-encoded fields."


class InvalidField(ServiceError):
    status, slug, code = 400, "invalid_field", 1002
    message = "A field is missing or has the wrong type."


class UnsupportedLoginType(ServiceError):
    status, slug, code = 400, "unsupported_login_type", 1003
    message = 'Unknown login type; the only supported type is "wxapp".'


class UnknownApp(ServiceError):
    status, slug, code = 400, "unknown_app", 1009
    message = "X-WX-AppId names an app this service is not configured for (WECHAT_APPS)."


class BadRequest(ServiceError):
    status, slug, code = 400, "bad_request", 1004
    message = "The request could not be understood."


class NotFound(ServiceError):
    status, slug, code = 404, "not_found", 1005
    message = "There is no such endpoint."


class MethodNotAllowed(ServiceError):
    status, slug, code = 405, "method_not_allowed", 1006
    message = "This endpoint does not accept that HTTP method."


class PayloadTooLarge(ServiceError):
    status, slug, code = 413, "payload_too_large", 1007
    message = "The request body is too large."


class RateLimited(ServiceError):
    status, slug, code = 429, "rate_limited", 1008
    message = "Too many login attempts; wait before trying again."


# -- session -----------------------------------------------------------------


class Unauthorized(ServiceError):
    status, slug, code = 401, "unauthorized", 2001
    message = (
        "Not logged in, or the session has ended: call wx.login and POST the code to /oauth/login."
    )


class MetricsUnauthorized(ServiceError):
    status, slug, code = 401, "metrics_unauthorized", 2004
    message = "GET /metrics takes the METRICS_TOKEN as Authorization: Bearer <token>."
    challenge = 'Bearer realm="metrics"'


class AccountDeleted(ServiceError):
    status, slug, code = 409, "account_deleted", 2003
    message = (
        "The account was deleted while this login ran: POST the same code to /oauth/login "
        "again to log in to a fresh account."
    )


class SessionKeyStale(ServiceError):
    status, slug, code = 409, "session_key_stale", 2002
    message = (
        "The data was encrypted under a session_key this server no longer has. "
        "Call wx.login and POST the code to /oauth/login first, then get fresh "
        "encryptedData (ask for the profile or phone number again) and retry."
    )


# -- open data (encryptedData) -------------------------------------------------


class MalformedEncryptedData(ServiceError):
    status, slug, code = 400, "malformed_encrypted_data", 4001
    message = "encryptedData is not base64 of whole AES blocks."


class MalformedIv(ServiceError):
    status, slug, code = 400, "malformed_iv", 4002
    message = "iv is not base64 of 16 bytes."


class PayloadNotJson(ServiceError):
    status, slug, code = 400, "payload_not_json", 4003
    message = "The data decrypted, but is not a JSON object."


class WatermarkMismatch(ServiceError):
    status, slug, code = 400, "watermark_mismatch", 4004
    message = "The data's watermark does not name this mini program's appid."


class PayloadExpired(ServiceError):
    status, slug, code = 400, "payload_expired", 4005
    message = "The data's watermark is too old: get fresh encryptedData and retry."


class SignatureMismatch(ServiceError):
    status, slug, code = 400, "signature_mismatch", 4006
    message = "signature is not sha1(rawData + session_key): rawData was altered."


class PayloadUserMismatch(ServiceError):
    status, slug, code = 400, "payload_user_mismatch", 4007
    message = "The data belongs to another WeChat user."


class PayloadInvalid(ServiceError):
    status, slug, code = 400, "payload_invalid", 4008
    message = "The data decrypted, but its fields are not what WeChat sends."


# -- WeChat's answer to code2Session -------------------------------------------


class CodeInvalid(ServiceError):
    status, slug, code = 400, "code_invalid", 3001
    message = "WeChat rejected the login code as invalid or expired: call wx.login again."


class CodeUsed(ServiceError):
    status, slug, code = 400, "code_used", 3002
    message = "This login code was already used: call wx.login again for a new one."


class CodeBlocked(ServiceError):
    status, slug, code = 403, "code_blocked", 3003
    message = "WeChat blocked this login because it rates the user as high risk."


class PhoneCodeInvalid(ServiceError):
    status, slug, code = 400, "phone_code_invalid", 3004
    message = "WeChat rejected the phone number code as invalid, expired or used: ask again."


class PhoneCodeAppidMismatch(ServiceError):
    status, slug, code = 400, "phone_code_appid_mismatch", 3005
    message = "The phone number code was issued to another mini program."


# -- WeChat unavailable or misconfigured ----------------------------------------


class WeChatRateLimited(ServiceError):
    status, slug, code = 429, "wechat_rate_limited", 3101
    message = "WeChat's per-minute quota is exhausted; retry in a minute."

    def __init__(self, message: str | None = None, *, retry_after: int | None = 60):
        super().__init__(message, retry_after=retry_after)


class WeChatBusy(ServiceError):
    status, slug, code = 503, "wechat_busy", 3102
    message = "WeChat reported a system error twice; retry shortly."
    retry_after_default = 1


class WeChatTimeout(ServiceError):
    status, slug, code = 504, "wechat_timeout", 3103
    message = "WeChat did not answer in time; retry shortly."


class WeChatUnreachable(ServiceError):
    status, slug, code = 502, "wechat_unreachable", 3104
    message = "WeChat could not be reached; retry shortly."


class WeChatMisconfigured(ServiceError):
    status, slug, code = 502, "wechat_misconfigured", 3105
    message = "WeChat rejected this service's app credentials; the operator has been alerted."


class WeChatTokenRejected(ServiceError):
    status, slug, code = 502, "wechat_token_rejected", 3107
    message = "WeChat rejected a freshly fetched access_token; the operator has been alerted."


class WeChatError(ServiceError):
    status, slug, code = 502, "wechat_error", 3106
    message = "WeChat gave an answer this service does not understand."


# -- the profile page: content security and avatars -----------------------------


class ContentRisky(ServiceError):
    status, slug, code = 422, "content_risky", 6001
    message = "WeChat's content security rates this text as risky; it was not saved."


class ContentNeedsReview(ServiceError):
    status, slug, code = 422, "content_needs_review", 6002
    message = (
        "WeChat's content security wants this text reviewed by a person; it was not saved "
        "(PROFILE_REVIEW_POLICY=reject)."
    )


class WeChatVisitExpired(ServiceError):
    status, slug, code = 409, "wechat_visit_expired", 6003
    message = (
        "WeChat checks content only for users who opened the mini program in the last two "
        "hours: call wx.login, POST the code to /oauth/login, then retry."
    )


class ContentCheckUnavailable(ServiceError):
    status, slug, code = 409, "content_check_unavailable", 6008
    message = (
        "WeChat's content security works through a mini program: log in through one of the "
        "mini programs once, then retry."
    )


class AvatarNotAnImage(ServiceError):
    status, slug, code = 415, "avatar_not_an_image", 6004
    message = "The file is not a JPEG, PNG, WebP or GIF image."


class AvatarUnreadable(ServiceError):
    status, slug, code = 422, "avatar_unreadable", 6005
    message = "The image is damaged or truncated and cannot be decoded."


class AvatarTooLarge(ServiceError):
    status, slug, code = 422, "avatar_too_large", 6006
    message = "The image has more pixels than AVATAR_MAX_PIXELS allows."


class PushNotConfigured(ServiceError):
    status, slug, code = 503, "push_not_configured", 6007
    message = (
        "WeChat's message push is not configured (WECHAT_PUSH_TOKEN), so avatars cannot "
        "be checked and pushes cannot be verified."
    )


# -- WeChat's message push ---------------------------------------------------------


class PushSignatureInvalid(ServiceError):
    status, slug, code = 403, "push_signature_invalid", 7001
    message = "The push's signature does not match the configured Token."


class PushExpired(ServiceError):
    status, slug, code = 403, "push_expired", 7002
    message = "The push's timestamp is too far from now (PUSH_MAX_AGE)."


class PushReplayed(ServiceError):
    status, slug, code = 409, "push_replayed", 7003
    message = "This push (timestamp, nonce and signature) was already received."


class PushMalformed(ServiceError):
    status, slug, code = 400, "push_malformed", 7004
    message = "The push's body cannot be read: not JSON or XML, or not decryptable."


# -- infrastructure ------------------------------------------------------------


class SessionStoreUnavailable(ServiceError):
    status, slug, code = 503, "session_store_unavailable", 5001
    message = "The session store is unavailable; retry shortly."
    retry_after_default = 1


class DatabaseUnavailable(ServiceError):
    status, slug, code = 503, "database_unavailable", 5002
    message = "The user database is unavailable; retry shortly."
    retry_after_default = 1


class NotReady(ServiceError):
    status, slug, code = 503, "not_ready", 5003
    message = "A part the service needs does not answer."


def by_slug(slug: str) -> type[ServiceError]:
    return next((cls for cls in catalog() if cls.slug == slug), ServiceError)


def catalog() -> list[type[ServiceError]]:
    """Every error class, for the README table and its test."""
    found: list[type[ServiceError]] = []
    pending = [ServiceError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return sorted(found, key=lambda cls: cls.code)
