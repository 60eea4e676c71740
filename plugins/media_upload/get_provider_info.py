"""Provider metadata Airflow discovers through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

_SECRET = {"type": ["string", "null"], "format": "password"}


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-media-upload",
        "name": "Media Upload",
        "description": "Uploads product videos in blocks to Lazada Media Center and Huawei Cloud VOD, waits "
        "(deferred) for audit or transcode, and attaches the video to products.",
        "integrations": [
            {
                "integration-name": "Lazada Open Platform",
                "external-doc-url": "https://open.lazada.com/apps/doc/doc?nodeId=30719&docId=120948",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {"integration-name": "Lazada Open Platform", "python-modules": ["media_upload.hooks.lazada"]},
        ],
        "filesystems": ["media_upload.transfer.http_filesystem"],
        "connection-types": [
            {
                "connection-type": "lazada",
                "hook-class-name": "media_upload.hooks.lazada.LazadaHook",
                "hook-name": "Lazada Open Platform",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {
                        "host": "Gateway URL or region",
                        "login": "App key",
                        "password": "App secret",
                    },
                    "placeholders": {
                        "host": "https://api.lazada.com.my/rest, or a region code: sg, my, th, ph, vn, id",
                        "login": "123456",
                    },
                },
                "conn-fields": {
                    "access_token": {
                        "label": "Access token",
                        "description": "Seller access token from /auth/token/create or /auth/token/refresh.",
                        "schema": _SECRET,
                    },
                    "refresh_token": {
                        "label": "Refresh token",
                        "description": "Lets the hook renew an expired access token once per call.",
                        "schema": _SECRET,
                    },
                },
            }
        ],
    }
