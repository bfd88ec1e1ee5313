"""`MessageQueueTrigger(scheme="disruptive+spool", ...)`: the events Data Connectors pushed to
`disruptive-receiver`, from its spool, through Airflow's common.messaging (no DT connection).

Needs the `messaging` extra (apache-airflow-providers-common-messaging).
"""

from __future__ import annotations

from airflow.providers.common.messaging.providers.base_provider import BaseMessageQueueProvider
from airflow.triggers.base import BaseEventTrigger

from airflow_provider.triggers.spool import DisruptiveSpoolTrigger


class DisruptiveSpoolMessageQueueProvider(BaseMessageQueueProvider):
    """Maps `MessageQueueTrigger(scheme="disruptive+spool", spool_conn_id=..., project_ids=[...],
    event_types=[...], condition=...)` to a DisruptiveSpoolTrigger with the same arguments."""

    scheme = "disruptive+spool"

    def trigger_class(self) -> type[BaseEventTrigger]:
        return DisruptiveSpoolTrigger
