"""Airflow provider that uploads product videos to Lazada Media Center and Huawei Cloud VOD."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("airflow-provider-media-upload")
except PackageNotFoundError:  # imported from the plugins folder without being installed
    __version__ = "0.0.0"
