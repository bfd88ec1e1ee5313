from airflow_provider import require_airflow

require_airflow(__name__)
