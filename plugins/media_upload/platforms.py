"""The platforms this provider uploads to: one line each, naming the class of its upload steps.

Everything platform-neutral (the rules, the engine, the ledger, the catalog, the waits) finds a
platform's steps, hook and facts through :func:`steps_class`; adding a platform adds a line here and its
own modules (protocol, hook, steps, operators, emulator), and changes no shared rule.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from media_upload.steps.common import PlatformSteps

#: Platform name (as the ledger keeps it) → ``module.Class`` of its steps.
STEPS = {
    "lazada": "media_upload.steps.lazada.LazadaSteps",
    "huawei_vod": "media_upload.steps.huawei_vod.HuaweiVodSteps",
    "shopee": "media_upload.steps.shopee.ShopeeSteps",
}


def load(path: str) -> Any:
    """The object a dotted ``module.name`` names, imported on first use."""
    module, _, name = path.rpartition(".")
    return getattr(import_module(module), name)


def steps_class(platform: str) -> type[PlatformSteps]:
    try:
        path = STEPS[platform]
    except KeyError:
        raise ValueError(f"unknown platform {platform!r}; this provider knows {', '.join(STEPS)}") from None
    found: type[PlatformSteps] = load(path)
    return found
