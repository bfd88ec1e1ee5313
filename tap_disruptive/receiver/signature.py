"""Checks the ``X-Dt-Signature`` header of a DT Data Connector push against the raw request body.

What DT does, from its public material:

* DT developer docs, Data Connectors, "Receiving Events"
  (developer.disruptive-technologies.com/docs/data-connectors/receiving-events): with a signature secret
  configured, every push carries ``X-Dt-Signature``, a JWT signed with that secret; inside it is a
  checksum of the request body. Verify the JWT with the secret, compute the checksum over the entire
  body, compare. Frameworks may lower-case the header name.
* disruptive-technologies/python-integrations, ``dtintegrations/data_connector/http_push.py`` (DT's own
  receiver library): ``jwt.decode(token, secret, algorithms=['HS256'])``, an expired token is refused,
  then the checksum claim is compared with a digest of the raw body bytes. Up to v0.5.0 the claim was
  ``checksum``, the SHA-1 hex; since v0.5.1 (PR #13, commit 6aa78d4, "SHA-1 replaced with SHA-256") it
  is ``checksum_sha256``, the SHA-256 hex. The JWTs DT signed in that repository's ``tests/events.py``
  carry both claims plus ``iat``, ``exp`` (``iat`` + 3600) and ``jti``, header ``{"alg": "HS256"}``.

So a token passes when it is an HS256 JWT signed with one of the configured secrets, has not expired
(when it has an ``exp``), and every checksum claim it carries matches the body: SHA-256 when present, SHA-1
when present, at least one of them. Everything else is refused with a reason, never stored.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import jwt

from tap_disruptive.receiver.config import ConnectorSecrets

if TYPE_CHECKING:
    from jwt.types import Options  # PyJWT 2.10 and later; only named for the type checker

HEADER = "X-Dt-Signature"
ALGORITHM = "HS256"

# Refusal reasons, as counted in /metrics and sent in the 401 body.
MISSING = "missing_signature"
MALFORMED = "malformed_signature"
WRONG_SECRET = "wrong_secret"  # noqa: S105 - a refusal reason, not a secret
EXPIRED = "expired_signature"
CHECKSUM_MISMATCH = "checksum_mismatch"
REASONS = (MISSING, MALFORMED, WRONG_SECRET, EXPIRED, CHECKSUM_MISMATCH)

# The receiver does its own time checks (with an injectable clock); PyJWT checks only the signature.
_SIGNATURE_ONLY: Options = {
    "verify_signature": True,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
    "require": [],
}
_CHECKSUMS: tuple[tuple[str, Callable[[bytes], Any]], ...] = (
    ("checksum_sha256", hashlib.sha256),
    ("checksum", hashlib.sha1),
)


class SignatureRefused(Exception):
    """A push whose signature does not hold. The message names the problem, never a secret."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class SignatureVerifier:
    """Verifies pushes signed with any of `secrets`; `leeway` seconds of clock skew are forgiven."""

    def __init__(
        self, secrets: ConnectorSecrets, clock: Callable[[], float] = time.time, leeway: float = 60.0
    ) -> None:
        self._secrets = secrets
        self._clock = clock
        self._leeway = leeway

    def __repr__(self) -> str:
        return f"SignatureVerifier({self._secrets!r}, leeway={self._leeway:g})"

    def verify(self, token: str | None, body: bytes) -> dict[str, Any]:
        """The token's claims if it signs `body`; raises SignatureRefused otherwise."""
        if not token:
            raise SignatureRefused(MISSING, f"the {HEADER} header is missing")
        _check_shape(token)
        claims = self._claims(token)
        self._check_expiry(claims)
        _check_checksums(claims, body)
        return claims

    def _claims(self, token: str) -> dict[str, Any]:
        for secret in self._secrets:
            try:
                claims: dict[str, Any] = jwt.decode(
                    token, secret, algorithms=[ALGORITHM], options=_SIGNATURE_ONLY
                )
            except jwt.InvalidSignatureError:
                continue  # another secret of a rotation may have signed it
            except jwt.InvalidTokenError:
                raise SignatureRefused(MALFORMED, f"the {HEADER} header is not a readable JWT") from None
            return claims
        raise SignatureRefused(WRONG_SECRET, f"the {HEADER} JWT is not signed with a configured secret")

    def _check_expiry(self, claims: dict[str, Any]) -> None:
        if "exp" not in claims:
            return
        expires = claims["exp"]
        if isinstance(expires, bool) or not isinstance(expires, int | float):
            raise SignatureRefused(MALFORMED, f"the {HEADER} JWT has a non-numeric exp")
        if self._clock() > expires + self._leeway:
            raise SignatureRefused(EXPIRED, f"the {HEADER} JWT has expired")


def _check_shape(token: str) -> None:
    """Refuse what is no HS256 JWT before trying secrets, so a garbled header is not called a wrong secret."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise SignatureRefused(MALFORMED, f"the {HEADER} header is not a JWT") from None
    if header.get("alg") != ALGORITHM:
        raise SignatureRefused(MALFORMED, f"the {HEADER} JWT is not signed with {ALGORITHM}")


def _check_checksums(claims: dict[str, Any], body: bytes) -> None:
    checked = 0
    for claim, digest in _CHECKSUMS:
        if claim not in claims:
            continue
        expected = claims[claim]
        if not isinstance(expected, str) or not hmac.compare_digest(
            expected.lower().encode(), digest(body).hexdigest().encode()
        ):
            raise SignatureRefused(CHECKSUM_MISMATCH, f"the {HEADER} {claim} does not match the body")
        checked += 1
    if not checked:
        raise SignatureRefused(CHECKSUM_MISMATCH, f"the {HEADER} JWT carries no checksum of the body")
