"""DT's service-account auth: the OAuth2 JWT-bearer token endpoint, bearer tokens and HTTP Basic."""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import time
from collections.abc import Callable

import jwt

from tap_disruptive.emulator.errors import ApiError

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
MAX_ASSERTION_LIFETIME = 3600


class InvalidGrant(Exception):
    """The token endpoint refuses the assertion (answered as OAuth2's 400 invalid_grant)."""


class Authenticator:
    def __init__(
        self,
        *,
        key_id: str,
        secret: str,
        email: str,
        token_lifetime: float,
        allow_basic: bool,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key_id = key_id
        self._secret = secret
        self._email = email
        self._lifetime = token_lifetime
        self._allow_basic = allow_basic
        self._clock = clock
        self._tokens: dict[str, float] = {}
        self.tokens_issued = 0

    def __repr__(self) -> str:
        return f"Authenticator(key_id={self._key_id!r}, email={self._email!r})"

    def issue(self, grant_type: str | None, assertion: str | None, audiences: list[str]) -> dict[str, object]:
        """Exchange a signed JWT for an access token, checking it as DT does."""
        if grant_type != JWT_BEARER_GRANT:
            raise InvalidGrant(f"grant_type must be {JWT_BEARER_GRANT}")
        if not assertion:
            raise InvalidGrant("missing assertion")
        try:
            header = jwt.get_unverified_header(assertion)
            if header.get("kid") != self._key_id:
                raise InvalidGrant("unknown key id")
            claims = jwt.decode(
                assertion,
                self._secret,
                algorithms=["HS256"],
                audience=audiences,
                issuer=self._email,
                options={"require": ["exp", "iat", "aud", "iss"]},
            )
        except jwt.PyJWTError as error:
            raise InvalidGrant(f"invalid assertion: {error}") from None
        if int(claims["exp"]) - int(claims["iat"]) > MAX_ASSERTION_LIFETIME:
            raise InvalidGrant("assertion lifetime exceeds one hour")
        token = secrets.token_urlsafe(32)
        self._tokens[token] = self._clock() + self._lifetime
        self.tokens_issued += 1
        return {"access_token": token, "token_type": "bearer", "expires_in": int(self._lifetime)}

    def check(self, authorization: str | None) -> None:
        """Accept a live bearer token or the key's Basic credentials; else DT's 401."""
        if not authorization:
            raise ApiError(401, "missing authorization header")
        scheme, _, value = authorization.partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer":
            expiry = self._tokens.get(value.strip())
            if expiry is None:
                raise ApiError(401, "invalid access token")
            if self._clock() >= expiry:
                raise ApiError(401, "access token expired")
            return
        if scheme == "basic" and self._allow_basic:
            try:
                key_id, _, secret = base64.b64decode(value.strip(), validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise ApiError(401, "malformed basic credentials") from None
            key_ok = hmac.compare_digest(key_id.encode(), self._key_id.encode())
            secret_ok = hmac.compare_digest(secret.encode(), self._secret.encode())
            if key_ok and secret_ok:
                return
            raise ApiError(401, "invalid credentials")
        raise ApiError(401, "unsupported authorization scheme")
