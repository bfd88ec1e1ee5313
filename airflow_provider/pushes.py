"""Data Connector pushes as the triggers fire them: DT's event with its device and project ids (as the
stream trigger's documents), plus the labels and the device type the connector sent with it.

`dt_push_event` decodes one message that a Data Connector put on a cloud queue (DT pushes natively to
AWS SQS, Google Cloud Pub/Sub and Azure Service Bus, which Airflow watches with MessageQueueTrigger
schemes `sqs`, `google+pubsub` and `azure+servicebus`), so that a DAG run by such a queue reads the
same document as one run by this provider's triggers.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

import orjson

from airflow_provider.triggers.disruptive import event_document
from tap_disruptive.client.protocol.spooled import PushedEvent, pushed_event


def push_document(pushed: PushedEvent) -> dict[str, Any]:
    """The document of a pushed event: `event_document`'s, with the push's `labels` and `device_type`."""
    return {**event_document(pushed.event), "labels": dict(pushed.labels), "device_type": pushed.device_type}


def dt_push_event(message_body: str | bytes | Mapping[str, Any]) -> dict[str, Any]:
    """The event document of one Data Connector message: its body as the connector sent it (JSON text,
    or base64 of it as in a Pub/Sub message's `data`, or already decoded). The body is DT's envelope
    (`{"event": ..., "labels": ..., "metadata": ...}`, as an HTTP push's), or a bare DT event.

    ValueError, saying why, for anything else.
    """
    body = _envelope(message_body)
    try:
        pushed = pushed_event(0, orjson.dumps(body))
    except ValueError as error:
        # pushed_event speaks of spool rows; the reason after its prefix is what matters here.
        reason = str(error).split(" is not a DT push: ", 1)[-1]
        raise ValueError(f"the message is not a DT Data Connector push: {reason}") from None
    return push_document(pushed)


def _envelope(message_body: str | bytes | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(message_body, Mapping):
        document: Any = dict(message_body)
    else:
        text = message_body.encode() if isinstance(message_body, str) else bytes(message_body)
        text = text.strip()
        if not text.startswith((b"{", b"[")):
            # Pub/Sub hands the data base64-encoded; base64 never starts with "{" or "[", JSON here does.
            try:
                text = base64.b64decode(text, validate=True)
            except binascii.Error:
                raise ValueError("the message is neither JSON nor base64 of it") from None
        try:
            document = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise ValueError("the message is not JSON") from None
    if not isinstance(document, dict):
        raise ValueError("the message is not a JSON object")
    envelope: dict[str, Any] = document
    if "event" not in envelope and "eventId" in envelope:
        envelope = {"event": envelope}
    return envelope
