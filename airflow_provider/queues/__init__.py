from airflow_provider import require_airflow

# The queue provider plugs into Airflow's common.messaging provider, the `messaging` extra.
require_airflow(__name__, "airflow.providers.common.messaging", extras="airflow,messaging")

# For DAGs run by a cloud queue a Data Connector pushes to (SQS, Pub/Sub, Service Bus): see `pushes`.
from airflow_provider.pushes import dt_push_event  # noqa: E402

__all__ = ["dt_push_event"]
