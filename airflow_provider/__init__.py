"""Airflow provider for Disruptive Technologies sensor events: a hook and connection type, a deferrable
trigger, a sensor and an operator that fire on matching events, and event-driven DAG scheduling."""

from __future__ import annotations

import importlib
from typing import Any

from tap_disruptive import __version__
from tap_disruptive.client.protocol.settings import DT_API_URL, DT_TOKEN_URL


def require_airflow(importer: str, module: str = "airflow.sdk", extras: str = "airflow") -> None:
    """Import `module` for the package `importer`, or fail with one error that says how to install it.

    Apache Airflow is an optional extra of tap-disruptive: the tap alone has no use for it. Each
    subpackage that needs Airflow calls this first, so that importing it without the extra reads
    "pip install 'tap-disruptive[airflow]'" rather than a bare "No module named 'airflow'". This package
    itself imports no Airflow: `get_provider_info` (the provider's entry point) and `conditions` work
    without it."""
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as error:
        missing = error.name or ""
        if not (module == missing or module.startswith(f"{missing}.")):
            raise  # Airflow is there but broken: its own error says more than ours would
        raise ModuleNotFoundError(
            f"{importer} needs {module!r}, which is not installed (no module named {missing!r}); "
            f"install tap-disruptive with its {extras!r} extra: pip install 'tap-disruptive[{extras}]'",
            name=missing,
        ) from None


def get_provider_info() -> dict[str, Any]:
    """Provider info for Airflow's providers manager (entry point `apache_airflow_provider`)."""
    return {
        "package-name": "tap-disruptive",
        "name": "Disruptive Technologies",
        "description": "Wait for, act on and schedule DAGs from Disruptive Technologies sensor events.",
        "versions": [__version__],
        "connection-types": [
            {
                "connection-type": "disruptive",
                "hook-class-name": "airflow_provider.hooks.disruptive.DisruptiveHook",
                "hook-name": "Disruptive Technologies",
                "ui-field-behaviour": {
                    "hidden-fields": ["host", "schema", "port"],
                    "relabeling": {"login": "Service account key ID", "password": "Service account secret"},
                    "placeholders": {"login": "c0key…", "password": "the key's secret"},
                },
                "conn-fields": {
                    "email": {
                        "label": "Service account email",
                        "description": "The OAuth2 JWT's issuer: <id>@<project>.serviceaccount.d21s.com",
                        "schema": {"type": ["string", "null"], "format": "email"},
                    },
                    "project_id": {
                        "label": "Project ID",
                        "description": "The DT project sensors, operators and triggers use by default",
                        "schema": {"type": ["string", "null"]},
                    },
                    "api_url": {
                        "label": "API URL",
                        "description": "DT's REST API, or a local emulator's",
                        "schema": {
                            "type": ["string", "null"],
                            "default": DT_API_URL,
                        },
                    },
                    # Not "token_url": Airflow masks every field whose name holds "token".
                    "identity_url": {
                        "label": "Identity (OAuth2 token endpoint) URL",
                        "description": "DT's OAuth2 token endpoint, or a local emulator's",
                        "schema": {"type": ["string", "null"], "default": DT_TOKEN_URL},
                    },
                    "basic_auth": {
                        "label": "Use HTTP Basic auth",
                        "description": "Send key id and secret on each request instead of exchanging a JWT",
                        "schema": {"type": ["boolean", "null"], "default": False},
                    },
                },
            }
        ],
        "hooks": [
            {
                "integration-name": "Disruptive Technologies",
                "python-modules": ["airflow_provider.hooks.disruptive"],
            }
        ],
        "triggers": [
            {
                "integration-name": "Disruptive Technologies",
                "python-modules": ["airflow_provider.triggers.disruptive", "airflow_provider.triggers.spool"],
            }
        ],
        "sensors": [
            {
                "integration-name": "Disruptive Technologies",
                "python-modules": ["airflow_provider.sensors.disruptive", "airflow_provider.sensors.spool"],
            }
        ],
        "operators": [
            {
                "integration-name": "Disruptive Technologies",
                "python-modules": ["airflow_provider.operators.disruptive"],
            }
        ],
        "queues": [
            "airflow_provider.queues.disruptive.DisruptiveMessageQueueProvider",
            "airflow_provider.queues.spool.DisruptiveSpoolMessageQueueProvider",
        ],
    }
