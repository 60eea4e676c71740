"""What every upload operator shares."""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowFailException


def refuse(problem: Exception | str) -> AirflowFailException:
    """Bad input fails the task at once: retrying cannot fix it."""
    return AirflowFailException(str(problem))
