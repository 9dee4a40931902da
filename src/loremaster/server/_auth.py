"""Who a request is: a bearer token (a static API key or an HS256 JWT) names the user;
with neither configured, every request is the trusted local caller."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import jwt

from ._problems import ApiError
from ._settings import ServerSettings

__all__ = ["LOCAL_USER", "Authenticator", "Caller"]

LOCAL_USER = "local"
"""Whose idempotency keys and rate limit the trusted local caller's requests are."""

ACT_AS_HEADER = "X-Loremaster-User"


@dataclass(frozen=True, slots=True)
class Caller:
    """The requester: `user_id` is what the manager's authorization sees (None: the
    trusted local caller of local mode)."""

    user_id: str | None

    @property
    def name(self) -> str:
        """Whose idempotency keys and rate limit these are."""
        return LOCAL_USER if self.user_id is None else self.user_id

    @property
    def person(self) -> str:
        """Who takes a lock, a seat or a presence: a named user. The trusted local caller
        has no name of its own to hold these by; it says whom it acts as."""
        if self.user_id is None:
            raise ApiError(
                422,
                "user_required",
                "locks, seats and presence belong to a person: in local mode, name the user "
                f"you act as with the {ACT_AS_HEADER} header",
            )
        return self.user_id


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


class Authenticator:
    def __init__(self, settings: ServerSettings) -> None:
        self.local_mode = settings.local_mode
        self._keys = {_digest(token): user for token, user in settings.keys.items()}
        secret = settings.jwt_secret
        self._jwt_secret = None if secret is None else secret.get_secret_value()

    def caller(self, authorization: str | None, act_as: str | None = None) -> Caller:
        """The caller of a request with these headers (401 unless they name one).

        Local mode trusts the request; it may name the user it acts as with the
        ``X-Loremaster-User`` header (so that two browser tabs are two people)."""
        if self.local_mode:
            return Caller(act_as or None)
        if not authorization:
            raise _unauthorized("a bearer token is required")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized("the Authorization header must be 'Bearer <token>'")
        return Caller(self._user_of(token))

    def _user_of(self, token: str) -> str:
        user = self._keys.get(_digest(token))
        if user is not None:
            return user
        if self._jwt_secret is not None and token.count(".") == 2:
            return self._jwt_subject(token, self._jwt_secret)
        raise _unauthorized("the bearer token is not valid")

    @staticmethod
    def _jwt_subject(token: str, secret: str) -> str:
        try:
            claims = jwt.decode(
                token, secret, algorithms=["HS256"], options={"require": ["sub", "exp"]}
            )
        except jwt.ExpiredSignatureError as exc:
            raise _unauthorized("the token has expired") from exc
        except jwt.PyJWTError as exc:
            raise _unauthorized("the bearer token is not valid") from exc
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise _unauthorized("the token's sub claim must name the user")
        return subject
