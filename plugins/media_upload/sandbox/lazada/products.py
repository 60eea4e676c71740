"""Product payloads (JSON or XML ``{"Request": {"Product": ...}}``) as CreateProduct and UpdateProduct take them."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import urlsplit

from media_upload.sandbox.lazada.errors import product_error

#: Containers whose single child name repeats; JSON must already hold them as arrays.
_LIST_CONTAINERS = {"Images": "Image", "Skus": "Sku"}
#: SKU fields CreateProduct requires (the guide's "Mandatory" rows).
REQUIRED_SKU_FIELDS = (
    "SellerSku",
    "price",
    "package_height",
    "package_length",
    "package_width",
    "package_weight",
)
MAX_IMAGES = 8


def _xml_to_value(element: ET.Element) -> Any:
    children = list(element)
    if not children:
        return (element.text or "").strip()
    if element.tag in _LIST_CONTAINERS:
        return {_LIST_CONTAINERS[element.tag]: [_xml_to_value(child) for child in children]}
    return {child.tag: _xml_to_value(child) for child in children}


def parse_payload(payload: str) -> dict[str, Any]:
    """The ``Product`` object of a payload, whichever of the two documented formats it uses."""
    text = payload.strip()
    if not text:
        raise product_error("30", "E030: Empty Request")
    try:
        if text.startswith("<"):
            root = ET.fromstring(text)
            document = {root.tag: _xml_to_value(root)}
        else:
            document = json.loads(text)
    except (ET.ParseError, json.JSONDecodeError) as exc:
        raise product_error("5", f"E005: Invalid Request Format ({exc})") from None
    product = document.get("Request", {}).get("Product") if isinstance(document, dict) else None
    if not isinstance(product, dict):
        raise product_error("5", "E005: Invalid Request Format (expected Request.Product)")
    for container, item in _LIST_CONTAINERS.items():
        for holder in [product, *skus_of(product)]:
            value = holder.get(container)
            if value in ("", None):
                holder.pop(container, None)
            elif not isinstance(value, dict) or not isinstance(value.get(item), list):
                raise product_error(
                    "1001", f"The parameters are not in JSON format: {container}.{item} must be an array"
                )
    return product


def skus_of(product: dict[str, Any]) -> list[dict[str, Any]]:
    skus = product.get("Skus")
    if isinstance(skus, dict) and isinstance(skus.get("Sku"), list):
        return [sku for sku in skus["Sku"] if isinstance(sku, dict)]
    return []


def images_of(holder: dict[str, Any]) -> list[str]:
    images = holder.get("Images")
    return [str(url) for url in images["Image"] if url] if isinstance(images, dict) else []


def is_lazada_hosted(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host.endswith(".slatic.net") or host.endswith(".lazcdn.com") or host.endswith(".lzd.co")


def check_images(product: dict[str, Any], *, require_one: bool) -> None:
    holders = [product, *skus_of(product)]
    all_images = [url for holder in holders for url in images_of(holder)]
    if require_one and not all_images:
        raise product_error(
            "4139", "BIZ_CHECK_MAIN_IMAGE_REQUIRE:Main image is require", field="Images.Image"
        )
    for holder in holders:
        if len(images_of(holder)) > MAX_IMAGES:
            raise product_error("4169", "CHK_IMAGE_MAX_ITEMS: Upload a maximum of 8 pictures", field="Images")
    for url in all_images:
        if not is_lazada_hosted(url):
            raise product_error(
                "4138",
                f"BIZ_CHECK_EXIST_OUTER_IMAGE: The image exists in the outer link: {url}; "
                "upload it with /image/upload first",
                field="Images.Image",
            )


def check_create(product: dict[str, Any]) -> None:
    """The CreateProduct mandatory fields, with the documented error for the first one missing."""
    if not str(product.get("PrimaryCategory", "")).strip():
        raise product_error("1", "E001: Parameter PrimaryCategory is mandatory", field="PrimaryCategory")
    attributes = product.get("Attributes")
    if not isinstance(attributes, dict) or not str(attributes.get("name", "")).strip():
        raise product_error("1", "E001: Parameter Attributes.name is mandatory", field="Attributes.name")
    if not (str(attributes.get("brand", "")).strip() or str(attributes.get("brand_id", "")).strip()):
        raise product_error(
            "4108", "CHK_BASIC_REQUIRED: brand or brand_id is mandatory", field="Attributes.brand"
        )
    skus = skus_of(product)
    if not skus:
        raise product_error("1", "E001: Parameter Skus.Sku is mandatory", field="Skus.Sku")
    seen: set[str] = set()
    for number, sku in enumerate(skus, start=1):
        for field in REQUIRED_SKU_FIELDS:
            if not str(sku.get(field, "")).strip():
                raise product_error("1", f"E001: Parameter Sku[{number}].{field} is mandatory", field=field)
        seller_sku = str(sku["SellerSku"])
        if seller_sku in seen:
            raise product_error("4105", f"BIZ_CHECK_SELLER_SKU_DUPLICATE: SellerSku repeat: {seller_sku}")
        seen.add(seller_sku)
    check_images(product, require_one=True)


def sample_product_payload(
    image_url: str, *seller_skus: str, name: str = "Sample product", video_id: str | None = None
) -> dict[str, Any]:
    """A small valid CreateProduct payload (the guide's mandatory fields) for demos, tests and seeding."""
    attributes = {"name": name, "brand": "No Brand", **({"video": video_id} if video_id else {})}
    sku = {
        "price": "35",
        "quantity": "10",
        "package_height": "10",
        "package_length": "30",
        "package_width": "20",
    }
    return {
        "Request": {
            "Product": {
                "PrimaryCategory": "10002019",
                "Images": {"Image": [image_url]},
                "Attributes": attributes,
                "Skus": {
                    "Sku": [
                        {"SellerSku": s, **sku, "package_weight": "0.5"} for s in seller_skus or ("sample-1",)
                    ]
                },
            }
        }
    }
