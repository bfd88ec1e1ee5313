"""Service-account auth without I/O: the JWT assertion, the token exchange's request and answer, and a
token cache that refreshes before expiry (and once on a 401)."""

from __future__ import annotations

import base64
import time
import warnings
from collections.abc import Callable
from urllib.parse import urlencode

import jwt
import orjson
from jwt.warnings import InsecureKeyLengthWarning

from tap_disruptive.client.protocol.errors import AuthenticationError, FatalError, TransientError
from tap_disruptive.client.protocol.http import HttpRequest, HttpResponse, error_message
from tap_disruptive.client.protocol.settings import ClientSettings

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME = 3600


class TokenCache:
    """The Authorization header to send, and when a new access token must be fetched first."""

    def __init__(self, settings: ClientSettings, clock: Callable[[], float] = time.time) -> None:
        self._settings = settings
        self._clock = clock
        self._token: str | None = None
        self._refresh_at = 0.0
        self.refreshes = 0

    def __repr__(self) -> str:
        state = "valid" if self.header() else "empty"
        return f"TokenCache(key_id={self._settings.credentials.key_id!r}, {state})"

    def header(self) -> str | None:
        """The Authorization value to use now, or None when a token must be fetched first."""
        credentials = self._settings.credentials
        if credentials.basic_auth:
            pair = f"{credentials.key_id}:{credentials.key_secret}".encode()
            return "Basic " + base64.b64encode(pair).decode()
        if self._token is None or self._clock() >= self._refresh_at:
            return None
        return f"Bearer {self._token}"

    def invalidate(self) -> None:
        """Forget the token (after a 401), so the next request fetches a new one."""
        self._token = None

    def token_request(self) -> HttpRequest:
        """The JWT-bearer grant, signed with the key's secret, as DT's token endpoint wants it."""
        settings, credentials = self._settings, self._settings.credentials
        now = int(self._clock())
        claims = {
            "iat": now,
            "exp": now + ASSERTION_LIFETIME,
            "aud": settings.token_url,
            "iss": credentials.email,
        }
        with warnings.catch_warnings():
            # DT issues the secrets; PyJWT's advice on their length is not the user's to act on.
            warnings.simplefilter("ignore", InsecureKeyLengthWarning)
            assertion = jwt.encode(
                claims, credentials.key_secret, algorithm="HS256", headers={"kid": credentials.key_id}
            )
        form = urlencode({"assertion": assertion, "grant_type": JWT_BEARER_GRANT})
        return HttpRequest(
            "POST",
            settings.token_url,
            headers={"Content-Type": "application/x-www-form-urlencoded", "User-Agent": settings.user_agent},
            body=form.encode(),
            timeout=settings.request_timeout,
            purpose="token",
        )

    def accept(self, response: HttpResponse) -> None:
        """Take the token endpoint's answer; raise AuthenticationError or TransientError if it is not one."""
        key_id = self._settings.credentials.key_id
        if response.status in (400, 401, 403):
            # OAuth2 refuses a bad grant with 400; DT's own client reads that as bad credentials too.
            raise AuthenticationError(
                f"the token endpoint refused service account key {key_id}: {error_message(response)} "
                "(check key_id, key_secret, email and token_url)"
            )
        if 400 <= response.status < 500 and response.status not in (408, 429):
            # Not DT's token endpoint at all (a wrong path, a web page): waiting will not change that.
            raise FatalError(
                f"token_url answered HTTP {response.status} ({error_message(response)}): check token_url"
            )
        if response.status != 200:
            raise TransientError(
                f"token endpoint answered HTTP {response.status}: {error_message(response)}",
                kind=f"http_{response.status}",
                retry_after=response.retry_after(),
            )
        try:
            answer = orjson.loads(response.body)
            token, lifetime = answer["access_token"], float(answer["expires_in"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise TransientError(
                "token endpoint answer has no access_token and expires_in", kind="bad_answer"
            ) from None
        if not isinstance(token, str) or not token:
            raise TransientError("token endpoint answered an empty access_token", kind="bad_answer")
        margin = min(self._settings.token_margin, lifetime / 4)
        self._token = token
        self._refresh_at = self._clock() + lifetime - margin
        self.refreshes += 1
