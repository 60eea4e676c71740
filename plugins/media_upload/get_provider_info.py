"""Provider metadata Airflow discovers through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

_SECRET = {"type": ["string", "null"], "format": "password"}
LAZADA = "Lazada Open Platform"
EXAMPLE_DAGS = (
    "lazada_product_video",
    "huawei_vod_upload",
    "shopee_product_video",
    "catalog_videos",
    "lazada_catalog_videos",
    "lazada_product_sync",
)
HUAWEI_VOD = "Huawei Cloud VOD"
SHOPEE = "Shopee Open Platform"
#: How requests travel, as the HTTP provider reads an ``http`` connection (media_upload.hooks.transport);
#: several types make the form a text box that takes text or JSON. Airflow masks ``proxies`` by its name.
_TRANSPORT_FIELDS: dict[str, Any] = {
    "proxies": {
        "label": "Proxy",
        "description": "The egress proxy: a URL (http://user:password@proxy.example:3128) for every request, or "
        'a JSON object by scheme ({"https": "http://proxy.example:3128"}), as the HTTP provider takes it.',
        "schema": {"type": ["string", "object", "null"]},
    },
    "verify": {
        "label": "Verify TLS",
        "description": "true (default), false, or the path of a CA bundle (PEM) every worker has: a private "
        "CA's, or a TLS-inspecting proxy's.",
        "schema": {"type": ["boolean", "string", "null"]},
    },
    "cert": {
        "label": "Client certificate",
        "description": 'Path of a PEM file with the certificate and its key, or ["cert.pem", "key.pem"], on '
        "every worker.",
        "schema": {"type": ["string", "array", "null"]},
    },
    "tcp_keep_alive": {
        "label": "TCP keep-alive",
        "description": "Probe idle connections so firewalls and proxies keep them open (on by default).",
        "schema": {"type": ["boolean", "null"]},
    },
    "tcp_keep_alive_idle": {
        "label": "Keep-alive idle (s)",
        "description": "Seconds a connection idles before the first probe (120 by default).",
        "schema": {"type": ["integer", "null"], "minimum": 1},
    },
}


def _modules(kind: str) -> list[dict[str, Any]]:
    return [
        {"integration-name": LAZADA, "python-modules": [f"media_upload.{kind}.lazada"]},
        {"integration-name": HUAWEI_VOD, "python-modules": [f"media_upload.{kind}.huawei_vod"]},
        {"integration-name": SHOPEE, "python-modules": [f"media_upload.{kind}.shopee"]},
    ]


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-media-upload",
        "name": "Media Upload",
        "description": "Uploads product videos in blocks to Lazada Media Center, Shopee and Huawei Cloud VOD, "
        "waits (deferred) for audit or transcode, and attaches the video to products.",
        "integrations": [
            {
                "integration-name": LAZADA,
                "external-doc-url": "https://open.lazada.com/apps/doc/doc?nodeId=30719&docId=120948",
                "tags": ["service"],
            },
            {
                "integration-name": HUAWEI_VOD,
                "external-doc-url": "https://support.huaweicloud.com/intl/en-us/api-vod/vod_04_0216.html",
                "tags": ["service"],
            },
            {
                "integration-name": SHOPEE,
                "external-doc-url": "https://open.shopee.com/documents/v2/v2.media_space.init_video_upload?module=91&type=1",
                "tags": ["service"],
            },
        ],
        # Not an Airflow key: where the example DAGs are inside the installed package.
        "example-dags": [f"media_upload.example_dags.{name}" for name in EXAMPLE_DAGS],
        "hooks": _modules("hooks"),
        "operators": _modules("operators"),
        "sensors": _modules("sensors"),
        "triggers": _modules("triggers"),
        "filesystems": ["media_upload.transfer.http_filesystem"],
        # The "Media uploads" view; Airflow loads it through the `airflow.plugins` entry point (a provider's
        # `plugins` are read only with `[core] lazy_discover_providers = False`).
        "plugins": [{"name": "media_upload", "plugin-class": "media_upload.plugin.MediaUploadPlugin"}],
        # `airflow config list` shows these; AIRFLOW__MEDIA_UPLOAD__<OPTION> sets them (docs/security.md).
        "config": {
            "media_upload": {
                "description": "What runs of the media upload DAGs may read: set by the deployment, not by "
                "whoever triggers a run or writes a manifest.",
                "options": {
                    "allowed_sources": {
                        "description": "Comma- or newline-separated local folders and URL prefixes that videos "
                        "and manifests may be read from, checked after resolving links and '..'. Empty: the "
                        "deployment's media folder, $AIRFLOW_HOME/media/, and nothing remote.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "/opt/airflow/media/, s3://seller-videos/, https://cdn.example.com/videos/",
                        "default": None,
                    },
                    "max_manifest_bytes": {
                        "description": "The largest catalog manifest read, in bytes.",
                        "version_added": "0.1.0",
                        "type": "integer",
                        "example": None,
                        "default": "50000000",
                    },
                    "trigger_hand_back_seconds": {
                        "description": "The shortest time from a wait's trigger start to its event, so the "
                        "executor's report of the deferring try arrives first (Airflow 3.3 takes a later one "
                        "for a failure and retries the task); raise it where executors report slowly.",
                        "version_added": "0.1.0",
                        "type": "float",
                        "example": None,
                        "default": "8",
                    },
                },
            }
        },
        "connection-types": [
            {
                "connection-type": "lazada",
                "hook-class-name": "media_upload.hooks.lazada.LazadaHook",
                "hook-name": LAZADA,
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
                    "seller_id": {
                        "label": "Seller ID",
                        "description": "The seller's id (country_user_info of the token answer); push needs it.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "push": {
                        "label": "Push",
                        "description": "Lazada pushes video states to /media-uploads/push/lazada/<conn id>: "
                        "audit waits take them instead of polling GetVideo.",
                        "schema": {"type": ["boolean", "null"]},
                    },
                    "push_poll_seconds": {
                        "label": "Push fallback poll (s)",
                        "description": "With push on, GetVideo is asked only after this long without a message.",
                        "schema": {"type": ["number", "null"]},
                    },
                    **_TRANSPORT_FIELDS,
                },
            },
            {
                "connection-type": "huawei_vod",
                "hook-class-name": "media_upload.hooks.huawei_vod.HuaweiVodHook",
                "hook-name": HUAWEI_VOD,
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {
                        "host": "VOD endpoint or region",
                        "login": "Access key (AK)",
                        "password": "Secret key (SK)",
                    },
                    "placeholders": {
                        "host": "https://vod.cn-north-4.myhuaweicloud.com, or a region: cn-north-4"
                    },
                },
                "conn-fields": {
                    "project_id": {
                        "label": "Project ID",
                        "description": "The IAM project of the region (every VOD URL names it).",
                        "schema": {"type": "string", "minLength": 1},
                    },
                    "region": {
                        "label": "Region",
                        "description": "For example cn-north-4; builds the endpoint when Host is empty.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "push": {
                        "label": "Push",
                        "description": "VOD notifies /media-uploads/push/huawei-vod/<conn id> (MFS notification "
                        "settings): waits take the notifications instead of polling ShowAssetMeta.",
                        "schema": {"type": ["boolean", "null"]},
                    },
                    "push_secret": {
                        "label": "Notification key",
                        "description": "The authentication key generated in VOD's notification settings; "
                        "notifications whose auth_sign does not hold under it are refused.",
                        "schema": _SECRET,
                    },
                    "push_poll_seconds": {
                        "label": "Push fallback poll (s)",
                        "description": "With push on, ShowAssetMeta is asked only after this long without a "
                        "notification.",
                        "schema": {"type": ["number", "null"]},
                    },
                    **_TRANSPORT_FIELDS,
                },
            },
            {
                "connection-type": "shopee",
                "hook-class-name": "media_upload.hooks.shopee.ShopeeHook",
                "hook-name": SHOPEE,
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {
                        "host": "API host or key",
                        "login": "Partner ID",
                        "password": "Partner key",
                    },
                    "placeholders": {
                        "host": "https://partner.shopeemobile.com, or a key: global, cn, br, sandbox",
                        "login": "2001887",
                    },
                },
                "conn-fields": {
                    "access_token": {
                        "label": "Access token",
                        "description": "The shop's access token from /auth/token/get (valid 4 hours; renewed here).",
                        "schema": _SECRET,
                    },
                    "refresh_token": {
                        "label": "Refresh token",
                        "description": "Renews the access token; Shopee issues a new one with every renewal.",
                        "schema": _SECRET,
                    },
                    "shop_id": {
                        "label": "Shop ID",
                        "description": "The authorized shop (shop calls are signed with it).",
                        "schema": {"type": ["integer", "string", "null"]},
                    },
                    "part_size": {
                        "label": "Part size (bytes)",
                        "description": '4194304 (4 MiB, the default) or 4000000, as your gateway reads "4 MB".',
                        "schema": {"type": ["integer", "null"], "enum": [4194304, 4000000, None]},
                    },
                    **_TRANSPORT_FIELDS,
                },
            },
        ],
    }
