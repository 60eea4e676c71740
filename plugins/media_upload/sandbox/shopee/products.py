"""Items as ``v2.product.add_item``, ``update_item`` and ``get_item_base_info`` take and show them.

Only what putting a video on an item needs is checked in depth; the rest of an item is kept as sent, with the
add_item page's required fields present and of the right JSON type.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from media_upload.protocols.shopee import parse_id
from media_upload.sandbox.shopee.errors import wrong_parameters

#: "item_id list; limit [0,50]".
MAX_ITEMS_PER_READ = 50


@dataclass
class Item:
    item_id: int
    shop_id: int
    item_name: str
    description: str
    original_price: float
    weight: float
    category_id: int
    image_id_list: list[str]
    logistic_info: list[dict[str, Any]]
    created_at: float
    updated_at: float
    item_sku: str = ""
    item_status: str = "NORMAL"
    condition: str = "NEW"
    dimension: dict[str, Any] | None = None
    video_upload_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _number(body: Mapping[str, Any], name: str, *, positive: bool = True) -> float:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise wrong_parameters(f"{name} is required and must be a number")
    if positive and value <= 0:
        raise wrong_parameters(f"{name} must be greater than 0")
    return float(value)


def _integer(body: Mapping[str, Any], name: str) -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise wrong_parameters(f"{name} is required and must be a non-negative integer")
    return value


def _text(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise wrong_parameters(f"{name} is required and must be a non-blank string")
    return value


def _images(body: Mapping[str, Any]) -> list[str]:
    image = body.get("image")
    ids = image.get("image_id_list") if isinstance(image, dict) else None
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
        raise wrong_parameters("image.image_id_list is required and must be a non-empty list of image ids")
    return list(ids)


def _logistics(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    value = body.get("logistic_info")
    if not isinstance(value, list) or not value:
        raise wrong_parameters("logistic_info is required and must be a non-empty list")
    for channel in value:
        if (
            not isinstance(channel, dict)
            or isinstance(channel.get("logistic_id"), bool)
            or not isinstance(channel.get("logistic_id"), int)
            or not isinstance(channel.get("enabled"), bool)
        ):
            raise wrong_parameters(
                "each logistic_info entry needs an integer logistic_id and a boolean enabled"
            )
    return [dict(channel) for channel in value]


#: add_item's required fields (its page's "Required" rows), in the page's order.
REQUIRED_FIELDS = (
    "original_price",
    "description",
    "weight",
    "item_name",
    "logistic_info",
    "category_id",
    "image",
)


def new_item(item_id: int, shop_id: int, body: Mapping[str, Any], now: float) -> Item:
    """An item from an add_item body, or the ``error_param`` of its first missing or mistyped field."""
    missing = [name for name in REQUIRED_FIELDS if name not in body]
    if missing:
        raise wrong_parameters(f"{missing[0]} is required")
    dimension = body.get("dimension")
    if dimension is not None and not isinstance(dimension, dict):
        raise wrong_parameters("dimension must be an object")
    known = {*REQUIRED_FIELDS, "item_sku", "item_status", "condition", "dimension", "video_upload_id"}
    return Item(
        item_id=item_id,
        shop_id=shop_id,
        item_name=_text(body, "item_name"),
        description=_text(body, "description"),
        original_price=_number(body, "original_price"),
        weight=_number(body, "weight"),
        category_id=_integer(body, "category_id"),
        image_id_list=_images(body),
        logistic_info=_logistics(body),
        created_at=now,
        updated_at=now,
        item_sku=str(body.get("item_sku") or ""),
        item_status=str(body.get("item_status") or "NORMAL"),
        condition=str(body.get("condition") or "NEW"),
        dimension=dict(dimension) if dimension else None,
        extra={k: v for k, v in body.items() if k not in known},
    )


def apply_update(item: Item, body: Mapping[str, Any], now: float) -> None:
    """The fields update_item may change besides the video (checked like add_item's when present)."""
    if "item_name" in body:
        item.item_name = _text(body, "item_name")
    if "description" in body:
        item.description = _text(body, "description")
    if "weight" in body:
        item.weight = _number(body, "weight")
    if "category_id" in body:
        item.category_id = _integer(body, "category_id")
    if "image" in body:
        item.image_id_list = _images(body)
    if "item_sku" in body:
        item.item_sku = str(body["item_sku"] or "")
    item.updated_at = now


def requested_video(body: Mapping[str, Any]) -> tuple[bool, str | None]:
    """``(given, id)`` from a body's ``video_upload_id``: ``(False, None)`` when absent; ``(True, None)`` when
    blank, which deletes the video; ``(True, id)`` for a one-element list.

    "If you want to delete it, please pass it with blank": ``[]``, ``[""]``, ``""``, ``null`` and the
    sample's ``[{}]`` all count as blank, since the pages show no single form.
    """
    if "video_upload_id" not in body:
        return False, None
    value = body["video_upload_id"]
    if value in (None, "", [], [""], [{}]):
        return True, None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise wrong_parameters("video_upload_id must be a list of strings")
    if len(value) > 1:
        raise wrong_parameters("video_upload_id: only accept one video_upload_id")
    return True, value[0]


def parse_item_ids(values: list[str]) -> list[int]:
    """``item_id_list`` as GET query values: repeated keys (the SDK), ``1,2`` or ``[1,2]`` (the page's sample)."""
    ids: list[int] = []
    for value in values:
        text = value.strip()
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError:
                parsed = None
            if not isinstance(parsed, list):
                raise wrong_parameters(f"item_id_list {value!r} is not a list")
            pieces = [str(p) for p in parsed]
        else:
            pieces = [p for p in text.split(",") if p.strip()]
        for piece in pieces:
            number = parse_id(piece.strip())
            if number is None:
                raise wrong_parameters(f"item_id_list holds {piece!r}, not an item id")
            ids.append(number)
    if not ids:
        raise wrong_parameters("item_id_list is required")
    if len(ids) > MAX_ITEMS_PER_READ:
        raise wrong_parameters(f"item_id_list holds {len(ids)} ids; the limit is {MAX_ITEMS_PER_READ}")
    return ids


def sample_item(name: str = "Sample item", video_upload_id: str | None = None) -> dict[str, Any]:
    """A small add_item body with every required field, for tests, demos and seeding."""
    body: dict[str, Any] = {
        "original_price": 35.0,
        "description": f"{name}: a sample item of the Shopee sandbox.",
        "weight": 0.5,
        "item_name": name,
        "logistic_info": [{"logistic_id": 18028, "enabled": True}],
        "category_id": 100636,
        "image": {"image_id_list": ["sg-11134201-7rasample-0000000000000a"]},
        "dimension": {"package_height": 10, "package_length": 30, "package_width": 20},
        "item_sku": name.lower().replace(" ", "-"),
    }
    if video_upload_id:
        body["video_upload_id"] = [video_upload_id]
    return body
