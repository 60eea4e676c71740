"""What every platform status sensor shares: poke, reschedule or deferrable, failing fast on rejection."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, conf
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.triggers.base import BaseTrigger


class PlatformStatusSensor(BaseSensorOperator):
    """Waits for a platform-side status. Subclasses give :meth:`poke`, :meth:`trigger` and :meth:`outcome`.

    With ``deferrable=True`` (default: ``[operators] default_deferrable``) it checks once, then hands the wait
    to :meth:`trigger` in the triggerer and holds no worker slot. A rejected item raises
    ``AirflowFailException`` (no retries) in every mode; ``soft_fail`` and ``never_fail`` turn that into a
    skip. ``timeout`` defaults to one day and ``poke_interval`` (also the trigger's longest wait) to 30 s.
    """

    def __init__(
        self,
        *,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("timeout", 24 * 3600)
        kwargs.setdefault("poke_interval", 30)
        super().__init__(**kwargs)
        self.deferrable = deferrable

    def trigger(self) -> BaseTrigger:
        raise NotImplementedError

    def outcome(self, event: dict[str, Any]) -> Any:
        """The XCom value of a ``success`` event, or the ``AirflowFailException`` of a ``failed`` one."""
        raise NotImplementedError

    def looks_first(self, context: Context) -> bool:
        """Whether the deferrable wait looks once before deferring (a platform that notifies the end
        needs no look to learn it)."""
        return True

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        if self.looks_first(context):
            try:
                first = self.poke(context)
            except AirflowFailException as exc:
                if self.soft_fail or self.never_fail:
                    raise AirflowSkipException(str(exc)) from None
                raise
            if first:
                return getattr(first, "xcom_value", None)
        self.defer(
            trigger=self.trigger(), method_name="execute_complete", timeout=timedelta(seconds=self.timeout)
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        if event.get("status") in ("success", "failed"):
            result = self.outcome(event)
            if isinstance(result, AirflowFailException):
                raise result
            return result
        raise AirflowException(f"Waiting in the triggerer failed for {self.task_id}: {event.get('message')}")
