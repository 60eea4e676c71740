"""``lazada_catalog_upload``: :func:`~media_upload.task_groups.catalog.catalog_upload` for Lazada alone."""

from __future__ import annotations

from typing import Any

from airflow.sdk import XComArg

from media_upload.hooks import LAZADA_CONN_ID
from media_upload.task_groups.catalog import catalog_upload


def lazada_catalog_upload(
    manifest: str, *, lazada_conn_id: str = LAZADA_CONN_ID, account: str | None = None, **kwargs: Any
) -> XComArg:
    """Upload a manifest's videos to one Lazada seller (``seller_sku`` / ``item_id`` rows); every other
    argument is :func:`~media_upload.task_groups.catalog.catalog_upload`'s."""
    return catalog_upload(
        manifest,
        platforms=("lazada",),
        connections={"lazada": lazada_conn_id},
        accounts={"lazada": account} if account else None,
        **kwargs,
    )
