from airflow_provider import require_airflow

# The queue provider plugs into Airflow's common.messaging provider, the `messaging` extra.
require_airflow(__name__, "airflow.providers.common.messaging", extras="airflow,messaging")
