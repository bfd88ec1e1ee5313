"""What a Data Connector sends for one event: DT's JSON body and the `X-Dt-Signature` header that signs it.

Body: `{"event": <the event as the API returns it>, "labels": {<the device's labels the connector names>},
"metadata": {"deviceId", "projectId", "deviceType", "productNumber"}}`, compact, as DT sends it.
Signature: an HS256 JWT made with the connector's signature secret, with the claims DT's pushes carry
(disruptive-technologies/python-integrations' fixtures): `checksum` (SHA-1 hex of the raw body, what DT's
receiver library checks), `checksum_sha256`, `exp` (an hour after `iat`), `iat` and `jti` (an xid).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Sequence

from tap_disruptive.emulator.store import Device

SIGNATURE_HEADER = "X-Dt-Signature"
SIGNATURE_LIFETIME = 3600
_JWT_HEADER = b'{"alg":"HS256","typ":"JWT"}'


def _compact(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def push_body(event: bytes, device: Device, label_keys: Sequence[str]) -> bytes:
    """The body pushed for `event` (its JSON text) of `device`, with the labels the connector forwards."""
    labels = {key: device.labels[key] for key in label_keys if key in device.labels}
    metadata = {
        "deviceId": device.device_id,
        "projectId": device.project_id,
        "deviceType": device.device_type,
        "productNumber": device.product_number,
    }
    return (
        b'{"event":' + event + b',"labels":' + _compact(labels) + b',"metadata":' + _compact(metadata) + b"}"
    )


def _base64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def signature(body: bytes, secret: str, now: float, token_id: str) -> str:
    """The `X-Dt-Signature` value for `body`, issued at `now`.

    Signed here with hmac rather than PyJWT, which warns about the short secrets DT lets users choose.
    """
    issued = int(now)
    claims = {
        "checksum": hashlib.sha1(body, usedforsecurity=False).hexdigest(),
        "checksum_sha256": hashlib.sha256(body).hexdigest(),
        "exp": issued + SIGNATURE_LIFETIME,
        "iat": issued,
        "jti": token_id,
    }
    signing_input = _base64url(_JWT_HEADER) + b"." + _base64url(_compact(claims))
    mac = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + _base64url(mac)).decode("ascii")
