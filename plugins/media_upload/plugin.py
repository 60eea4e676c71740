"""The provider's Airflow plugin: the "Media uploads" view in the Airflow 3 UI.

- ``fastapi_apps``: :func:`media_upload.ui.app.create_app`, mounted by the api-server at ``/media-uploads``;
- ``external_views``: that page in the UI's Browse menu, and as a "Media uploads" tab of every DAG run
  (``?dag_id={DAG_ID}&run_id={RUN_ID}``: the same table, for that run).

Every Airflow process loads every plugin (the scheduler for its listeners, each task for its macros), but
only the api-server reads these two attributes: they are built the first time they are read, so a task
never imports FastAPI or the api-server's security modules for them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

try:
    from airflow.sdk.plugins_manager import AirflowPlugin
except ImportError:  # Airflow 3.2
    from airflow.plugins_manager import AirflowPlugin  # type: ignore[no-redef,assignment]

NAME = "Media uploads"


class _BuiltWhenRead:
    """A class attribute computed once, on first read (from the class or an instance)."""

    def __init__(self, build: Callable[[], list[dict[str, Any]]]) -> None:
        self.build = build
        self.value: list[dict[str, Any]] | None = None

    def __get__(self, instance: object, owner: type | None = None) -> list[dict[str, Any]]:
        if self.value is None:
            self.value = self.build()
        return self.value


def _apps() -> list[dict[str, Any]]:
    from media_upload.ui.app import URL_PREFIX, create_app

    return [{"app": create_app(), "url_prefix": URL_PREFIX, "name": NAME}]


def _views() -> list[dict[str, Any]]:
    from media_upload.ui.app import URL_PREFIX, base_path

    page = f"{base_path()}{URL_PREFIX}/"
    icons = {"icon": f"{page}icon.svg", "icon_dark_mode": f"{page}icon-dark.svg"}
    return [
        {
            "name": NAME,
            "href": page,
            "destination": "nav",
            "category": "browse",
            "url_route": "media-uploads",
            **icons,
        },
        {
            "name": NAME,
            "href": page + "?dag_id={DAG_ID}&run_id={RUN_ID}",
            "destination": "dag_run",
            "url_route": "media-uploads-run",
            **icons,
        },
    ]


class MediaUploadPlugin(AirflowPlugin):
    """Registered through the ``airflow.plugins`` entry point (and the provider info's ``plugins``)."""

    name = "media_upload"
    fastapi_apps = _BuiltWhenRead(_apps)  # type: ignore[assignment]
    external_views = _BuiltWhenRead(_views)  # type: ignore[assignment]
