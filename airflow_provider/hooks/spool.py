"""Where a receiver's spool is: given outright (`spool=`, the receiver's `--spool`: a SQLite file path or a
postgresql:// URL), or named by an Airflow connection (`spool_conn_id=`), which keeps a PostgreSQL
password in Airflow's secrets rather than in DAG files, serialized DAGs and trigger rows.

A connection names the spool by its extra `spool` (a path or a URL, as the receiver's `--spool`), or, if
it is a Postgres connection, by its host, port, schema (the database), login and password (its other
extras, e.g. sslmode, become the URL's query):

    AIRFLOW_CONN_DT_SPOOL='postgresql://receiver:secret@db.internal:5432/dtspool'
    AIRFLOW_CONN_DT_SPOOL='{"conn_type": "generic", "extra": {"spool": "/var/lib/dt/spool.sqlite"}}'
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException
from airflow.sdk.log import amask_secret, mask_secret

from tap_disruptive.client.protocol.errors import FatalError
from tap_disruptive.spool import spool_password

POSTGRES_TYPES = ("postgres", "postgresql")


def spool_of_connection(connection: Any) -> str:
    """The spool an Airflow connection names; FatalError (naming the connection, never its secrets) if
    it names none."""
    extra = _extra(connection)
    named = extra.get("spool")
    if named:
        return str(named)
    if str(connection.conn_type or "").lower() in POSTGRES_TYPES:
        if not connection.host:
            raise FatalError(f"connection {connection.conn_id} is a Postgres connection without a host")
        user = quote(connection.login or "", safe="")
        if connection.password:
            user += ":" + quote(connection.password, safe="")
        netloc = f"{user}@" if user else ""
        netloc += connection.host + (f":{connection.port}" if connection.port else "")
        query = urlencode({key: str(value) for key, value in sorted(extra.items())})
        return f"postgresql://{netloc}/{quote(connection.schema or '', safe='')}" + (
            f"?{query}" if query else ""
        )
    raise FatalError(
        f"connection {connection.conn_id} names no spool: give it an extra 'spool' (the receiver's "
        "--spool, a SQLite file path or a postgresql:// URL), or make it a Postgres connection"
    )


def check_source(spool: str | None, spool_conn_id: str | None) -> None:
    """Exactly one of the two, else ValueError (at DAG parse time, where the mistake is made)."""
    if (spool is None) == (spool_conn_id is None):
        raise ValueError("give either spool (the receiver's --spool) or spool_conn_id, not both or neither")


def spool_target(spool: str | None, spool_conn_id: str | None) -> str:
    """The spool, resolved on a worker. Its password (if any) is masked in Airflow's logs from then on."""
    check_source(spool, spool_conn_id)
    if spool is None:
        assert spool_conn_id is not None
        try:
            spool = spool_of_connection(BaseHook.get_connection(spool_conn_id))
        except AirflowNotFoundException:
            raise FatalError(f"no Airflow connection {spool_conn_id!r} (the spool's)") from None
    password = spool_password(spool)
    if password:
        mask_secret(password)
    return spool


async def aspool_target(spool: str | None, spool_conn_id: str | None) -> str:
    """The same in the triggerer, without blocking its event loop."""
    check_source(spool, spool_conn_id)
    if spool is None:
        assert spool_conn_id is not None
        try:
            spool = spool_of_connection(await BaseHook.aget_connection(spool_conn_id))
        except AirflowNotFoundException:
            raise FatalError(f"no Airflow connection {spool_conn_id!r} (the spool's)") from None
    password = spool_password(spool)
    if password:
        await amask_secret(password)
    return spool


def _extra(connection: Any) -> dict[str, Any]:
    extra = connection.extra_dejson if hasattr(connection, "extra_dejson") else connection.extra
    if isinstance(extra, str):
        extra = json.loads(extra or "{}")
    return dict(extra or {})
