"""`MessageQueueTrigger(scheme="disruptive", ...)`: DT events through Airflow's common.messaging.

Needs the `messaging` extra (apache-airflow-providers-common-messaging).
"""

from __future__ import annotations

from airflow.providers.common.messaging.providers.base_provider import BaseMessageQueueProvider
from airflow.triggers.base import BaseEventTrigger

from airflow_provider.triggers.disruptive import DisruptiveEventTrigger


class DisruptiveMessageQueueProvider(BaseMessageQueueProvider):
    """Maps `MessageQueueTrigger(scheme="disruptive", project_id=..., event_types=[...], condition=...)`
    to a DisruptiveEventTrigger with the same arguments."""

    scheme = "disruptive"

    def trigger_class(self) -> type[BaseEventTrigger]:
        return DisruptiveEventTrigger
