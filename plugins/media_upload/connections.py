"""Connections wherever this code runs: in a task, in the api-server (the "Media uploads" view) or in the
``media-upload`` command.

In a task, Airflow's Task SDK reads connections through the execution API, which sees every secrets
backend and the metadata database. Outside one it sees environment variables and secrets backends only,
so a connection created in Admin → Connections would be missing there; the metadata database is then
asked too.
"""

from __future__ import annotations

import sys
from typing import Any


def in_task() -> bool:
    """True inside a task, a DAG parse or the triggerer, where the supervisor answers for the database."""
    return hasattr(sys.modules.get("airflow.sdk.execution_time.task_runner"), "SUPERVISOR_COMMS")


def get_connection(conn_id: str) -> Any:
    """The connection ``conn_id``; raises ``AirflowNotFoundException`` when no source has it."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        if in_task():
            raise
    from airflow.models.connection import Connection

    return Connection.get_connection_from_secrets(conn_id)
