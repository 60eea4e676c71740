"""OpenLineage for every upload: the source each task read and the platform video and product it made.

Sources are named as the OpenLineage naming spec (https://openlineage.io/docs/spec/naming) says, so
lineage joins with whatever wrote them: a local file is ``file`` + its real path, ``s3://{bucket}`` +
key, ``gs://{bucket}`` + key, ``https://{host}:{port}`` + path. What an upload makes is named in this
provider's namespaces (``docs/observability.md``): ``lazada://{gateway host}`` with ``video/{id}`` and
``product/{item_id}``, ``shopee://{api host}`` with ``shop/{shop_id}/video/{id}`` and
``shop/{shop_id}/item/{item_id}``, ``huaweicloud-vod://{endpoint host}`` with
``project/{project_id}/asset/{id}``. No name ever holds a user part, a query or a fragment, so no
credential, signature or token reaches an event.

Operators record plain names while they run (:class:`ReportsLineage`); OpenLineage's classes are
imported only when its provider's listener asks for them, so the provider runs without it. Recording
looks nothing up when the listener asks, because the listener asks from a forked process.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from media_upload.steps.common import UploadJob

log = logging.getLogger(__name__)

#: What :class:`Named` datasets are, as OpenLineage's ``datasetType`` facet says it.
FILE, VIDEO, PRODUCT = "FILE", "VIDEO", "PRODUCT"
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Named:
    """One dataset as OpenLineage names it, and what it is (``FILE``, ``VIDEO``, ``PRODUCT``) where."""

    namespace: str
    name: str
    kind: str = FILE
    platform: str | None = None


def source(location: str) -> Named:
    """A video or manifest named by the OpenLineage naming spec; user part, query and fragment dropped.

    ``location`` is a local path (made real, as the source policy reads it), a ``file://`` URL or an
    ``s3://``, ``gs://`` or ``http(s)://`` URL.
    """
    text = str(location).strip()
    parts = urlsplit(text)
    if "://" not in text or parts.scheme.lower() == "file":
        path = unquote(parts.path) if "://" in text else text
        return Named("file", os.path.realpath(path))
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    path = parts.path or "/"
    if scheme in ("s3", "s3a", "s3n", "gs", "gcs"):
        return Named(f"{'gs' if scheme in ('gs', 'gcs') else 's3'}://{host}", path.lstrip("/") or "/")
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:  # not a number: no port rather than an event naming a typo
        port = _DEFAULT_PORTS.get(scheme)
    return Named(f"{scheme}://{host}" + (f":{port}" if port else ""), path)


def named_source(text: object) -> Named | None:
    """:func:`source` of a task's argument before the task runs: None unless it is a URL or an absolute path
    (the source policy refuses anything else, so a name for it would name a file the task never reads)."""
    value = text.strip() if isinstance(text, str) else ""
    return source(value) if "://" in value or os.path.isabs(value) else None


def asset_uri(location: str) -> str:
    """The source as an Airflow Asset URI for hook-level lineage (``file:///path``, ``s3://bucket/key``...)."""
    named = source(location)
    if named.namespace == "file":
        return f"file://{named.name}"
    separator = "" if named.name.startswith("/") else "/"
    return f"{named.namespace}{separator}{named.name}"


@dataclass(frozen=True)
class PlatformNaming:
    """How one platform's videos and products are named: the namespace's scheme and the API's URL, and
    the path of a video and a product (``None``: the platform has no products) under an account's scope."""

    scheme: str
    base_url: Callable[[Any], str]
    scope: Callable[[Any], str]
    video: str
    product: str | None


def naming_of(platform: str) -> PlatformNaming | None:
    """The naming a platform's steps give (``lineage_naming``; credentials are its hook's), None for one
    that names nothing or is not known."""
    from media_upload.platforms import STEPS, steps_class

    return steps_class(platform).lineage_naming if platform in STEPS else None


@dataclass(frozen=True)
class Place:
    """Where one connection's videos and products live, as lineage names them."""

    platform: str
    namespace: str
    scope: str
    naming: PlatformNaming

    @classmethod
    def of(cls, platform: str, hook: Any) -> Place:
        """From the platform's hook: its API host (the port only when not the scheme's default: an emulator
        or a proxy) and the account's scope. No secret of the credentials is read."""
        naming = naming_of(platform)
        if naming is None:
            raise ValueError(f"platform {platform!r} names no lineage")
        credentials = hook.credentials
        parts = urlsplit(naming.base_url(credentials))
        host = (parts.hostname or "").lower()
        port = parts.port if parts.port not in (None, _DEFAULT_PORTS.get(parts.scheme.lower())) else None
        namespace = f"{naming.scheme}://{host}" + (f":{port}" if port else "")
        return cls(platform, namespace, naming.scope(credentials), naming)

    def video(self, video_id: object) -> Named:
        return Named(self.namespace, f"{self.scope}{self.naming.video}/{video_id}", VIDEO, self.platform)

    def product(self, item_id: object) -> Named | None:
        if self.naming.product is None or item_id in (None, ""):
            return None
        return Named(self.namespace, f"{self.scope}{self.naming.product}/{item_id}", PRODUCT, self.platform)


@dataclass
class Lineage:
    """What one task read and made, each dataset once, in the order found."""

    inputs: list[Named] = field(default_factory=list)
    outputs: list[Named] = field(default_factory=list)

    def add(self, inputs: Iterable[Named | None] = (), outputs: Iterable[Named | None] = ()) -> None:
        for found, into in ((inputs, self.inputs), (outputs, self.outputs)):
            for named in found:
                if named is not None and named not in into:
                    into.append(named)


def openlineage_installed() -> bool:
    """Whether the OpenLineage provider is there to ask for lineage (cheap: no import)."""
    try:
        return importlib.util.find_spec("airflow.providers.openlineage") is not None
    except (ImportError, ValueError):
        return False


def operator_lineage(lineage: Lineage | None) -> Any:
    """The ``OperatorLineage`` the OpenLineage provider emits for ``lineage`` (empty for none), with a
    ``datasetType`` facet on each dataset; None without the provider."""
    try:
        from airflow.providers.common.compat.openlineage.facet import Dataset
        from airflow.providers.openlineage.extractors import OperatorLineage
    except ImportError:
        return None
    type_facet: Any = None
    try:
        from openlineage.client.generated.dataset_type_dataset import DatasetTypeDatasetFacet

        type_facet = DatasetTypeDatasetFacet
    except ImportError:  # an older client: the names alone
        pass

    def dataset(named: Named) -> Any:
        facets = {}
        if type_facet is not None:
            facets["datasetType"] = type_facet(datasetType=named.kind, subType=named.platform)
        return Dataset(namespace=named.namespace, name=named.name, facets=facets)

    lineage = lineage or Lineage()
    return OperatorLineage(
        inputs=[dataset(named) for named in lineage.inputs],
        outputs=[dataset(named) for named in lineage.outputs],
    )


def report_read(location: str) -> None:
    """Hook-level lineage: the source as an input Asset of the task's hook lineage collector, which the
    OpenLineage provider turns into the task's input when the task itself reports none. Skipped when no
    plugin reads hook lineage (creating the collector then costs a scan of every provider for nothing)."""
    try:
        collector = _hook_lineage_collector()
        if collector is not None:
            collector.add_input_asset(context=_HOOK_LINEAGE_CONTEXT, uri=asset_uri(location))
    except Exception as exc:  # lineage never fails a read
        log.debug("Hook lineage not recorded: %s", type(exc).__name__)


class _SourceReads:
    """The context sources are reported under: one for the process, so a file read by several
    :class:`~media_upload.transfer.source.Source` objects is one input, not one per object."""


_HOOK_LINEAGE_CONTEXT = _SourceReads()


def _hook_lineage_collector() -> Any:
    try:
        from airflow.sdk import plugins_manager

        if not plugins_manager.get_hook_lineage_readers_plugins():
            return None
    except (ImportError, AttributeError):  # an Airflow that keeps these elsewhere: ask the collector
        pass
    try:
        from airflow.providers.common.compat.lineage.hook import get_hook_lineage_collector
    except ImportError:
        try:
            from airflow.sdk.lineage import get_hook_lineage_collector
        except ImportError:
            return None
    return get_hook_lineage_collector()


class ReportsLineage:
    """Mixed into the operators: what a task read and made, recorded while it runs, handed to the
    OpenLineage provider by the methods Airflow's transfer operators have. Recording does nothing when
    the provider is not installed, and never fails a task."""

    _lineage: Lineage | None = None
    _lineage_places: dict[str, Place | None] | None = None

    def lineage_hook(self, platform: str) -> Any:
        """The hook of ``platform`` this task uses, for its API host and account; None: not one of ours."""
        raise NotImplementedError

    def lineage_place(self, platform: str) -> Place | None:
        places = self._lineage_places = self._lineage_places or {}
        if platform not in places:
            hook = self.lineage_hook(platform) if naming_of(platform) is not None else None
            places[platform] = Place.of(platform, hook) if hook is not None else None
        return places[platform]

    def report_lineage(
        self, inputs: Iterable[Named | None] = (), outputs: Iterable[Named | None] = ()
    ) -> None:
        if self._lineage is None:
            self._lineage = Lineage()
        self._lineage.add(inputs, outputs)

    def _reporting(self, what: str, work: Callable[[], None]) -> None:
        if not openlineage_installed():
            return
        try:
            work()
        except Exception as exc:  # lineage is a report: a failure to name something never fails an upload
            getattr(self, "log", log).warning("OpenLineage: %s not reported (%s)", what, type(exc).__name__)

    def report_source(self, location: str) -> None:
        """The task read this video or manifest."""
        self._reporting("source", lambda: self.report_lineage(inputs=[source(location)]))

    def report_jobs(self, jobs: Iterable[UploadJob], *, videos: bool = True) -> None:
        """The task read each job's source and (``videos``) made its video."""

        def work() -> None:
            for job in jobs:
                place = self.lineage_place(job.platform) if videos and job.video_id else None
                self.report_lineage([source(job.source)], [place.video(job.video_id) if place else None])

        self._reporting("uploads", work)

    def report_attached(self, attached: Iterable[Mapping[str, Any]]) -> None:
        """The task put each video on its product: ``{"platform", "video_id", "item_id"}`` (no video: the
        product's video was removed; no item: a platform without products, VOD)."""

        def work() -> None:
            for video in attached:
                place = self.lineage_place(str(video["platform"]))
                if place is None:
                    continue
                self.report_lineage(
                    [place.video(video["video_id"]) if video.get("video_id") else None],
                    [place.product(video.get("item_id"))],
                )

        self._reporting("attached videos", work)

    def lineage_on_start(self) -> Lineage | None:
        """What the task is known to read before it runs (its rendered arguments); nothing by default."""
        return None

    def get_openlineage_facets_on_start(self) -> Any:
        return operator_lineage(self.lineage_on_start())

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """What the task recorded (also what a failed task got to), else what was known at its start."""
        return operator_lineage(self._lineage or self.lineage_on_start())
