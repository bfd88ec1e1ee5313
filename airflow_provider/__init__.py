"""Airflow provider for Disruptive Technologies sensor events."""
