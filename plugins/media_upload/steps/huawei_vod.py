"""The Huawei Cloud VOD upload steps, each reading the ledger before it calls VOD or OBS.

``begin`` (CreateAsset and the OBS initiate, or resume, or reuse) → ``send`` (one signed OBS part PUT per
block, several at once) → ``finish`` (OBS complete, then ConfirmAssetUpload ``CREATED``; when an answer is
lost, VOD and OBS are asked what happened: the asset's status and the upload's parts tell). The asset id
is the "video id" of the ledger, the OBS upload id its upload id.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from media_upload.hooks.huawei_vod import (
    HuaweiVodApiError,
    HuaweiVodError,
    HuaweiVodHook,
    HuaweiVodTransportError,
    UploadedPart,
)
from media_upload.ledger import (
    AUDITED,
    COMMIT_UNKNOWN,
    COMMITTED,
    FAILED,
    HAS_VIDEO,
    NEEDS_ATTENTION,
    REJECTED,
    UPLOADING,
    LedgerEntry,
    now,
)
from media_upload.lineage import PlatformNaming
from media_upload.protocols.huawei_vod import (
    FAILED_ASSET_STATUSES,
    MAX_PART_BYTES,
    MAX_PARTS,
    PART_RULES,
    VIDEO_TYPES,
    AssetStatus,
    notified_weight,
    ready_statuses,
)
from media_upload.steps.common import PlatformSteps, UploadJob, UploadStopped
from media_upload.transfer.engine import BlockTask
from media_upload.transfer.plan import plan_upload
from media_upload.transfer.source import Source, SourceInfo

if TYPE_CHECKING:
    from media_upload.catalog.manifest import ManifestRow, RowProblem, Target

#: CreateAsset takes a title of at most this many bytes.
MAX_TITLE_BYTES = 128

PLATFORM = "huawei_vod"
#: Statuses of an asset whose upload was never confirmed.
_UNCONFIRMED = frozenset({"CREATING", "UNCREATED"})


class HuaweiVodSteps(PlatformSteps):
    """The ledger-aware VOD upload steps for one project (``account``)."""

    platform = PLATFORM
    title = "Huawei VOD"
    lineage_naming = PlatformNaming(  # an asset goes on no product
        "huaweicloud-vod", lambda c: c.endpoint, lambda c: f"project/{c.project_id}/", "asset", None
    )
    unit = "parts"
    finish_verb = "confirmed"
    video_noun = "asset"
    done_state = AUDITED  # an asset goes on no product
    hook_path = "media_upload.hooks.huawei_vod.HuaweiVodHook"
    state_reader_path = "media_upload.triggers.huawei_vod.HuaweiVodStateReader"
    transport_error = HuaweiVodTransportError
    api_error = HuaweiVodApiError
    hook: HuaweiVodHook

    max_file_bytes = MAX_PART_BYTES * MAX_PARTS + 1

    def final_states(self, job: UploadJob) -> list[str]:
        return sorted(
            {*(job.details.get("ready_statuses") or (AssetStatus.PUBLISHED,)), *FAILED_ASSET_STATUSES}
        )

    push_weight = staticmethod(notified_weight)

    def push_account(self) -> tuple[str, str] | None:
        """Where VOD's notifications for the connection's project are filed, when it takes them."""
        from media_upload.push import vod_account

        credentials = self.hook.credentials
        return vod_account(credentials.project_id) if credentials.push else None

    # -------------------------------------------------------------------- begin

    def start(self, job: UploadJob, entry: LedgerEntry) -> UploadJob:
        """CreateAsset with the fields in ``job.details["asset"]`` (``title``, ``video_name``, ``video_type``,
        ``auto_publish``...), then the single PUT or the OBS initiate. The asset id is the job's
        ``video_id``; ``details["confirmed"]`` becomes true once VOD has the whole video."""
        created = self.hook.create_asset(**job.details["asset"])
        target = created["target"]
        job = job.with_(
            video_id=str(created["asset_id"]),
            bucket=target["bucket"],
            object_key=target["object"],
            upload_id=None,
        )
        entry = self.uploading(
            job,
            entry,
            video_id=job.video_id,
            upload_id=None,
            details={**job.details, "bucket": job.bucket, "object_key": job.object_key},
        )
        self.log.info("%s: CreateAsset gave asset %s (object %s)", job.label, job.video_id, job.object_key)
        if job.details.get("mode") == "single":
            self._put_whole_file(job, str(created.get("video_upload_url") or ""))
            return job
        return self._initiate(job, entry)

    def resume(self, job: UploadJob, entry: LedgerEntry) -> UploadJob | None:
        """The asset's upload, when VOD still waits for it (``CREATING``); None starts a new asset."""
        if not entry.video_id:
            return None
        status = str(self.hook.show_asset_meta(entry.video_id).get("status"))
        if status != "CREATING":
            self.log.info("%s: asset %s is %s; starting a new one", job.label, entry.video_id, status)
            return None
        resumed = self.resumed(job, entry)
        if resumed.details.get("mode") == "single":
            # The single PUT's signed URL was a credential and was not kept, and VOD signs only multipart
            # requests afterwards: the same object goes up as a one-part upload instead.
            resumed = resumed.with_(details={**resumed.details, "mode": "multipart"})
            entry = self._record(entry, details={**entry.details, "mode": "multipart"})
        if not resumed.upload_id:
            resumed = self._initiate(resumed, entry)
        self.log.info(
            "%s: resuming asset %s (%d of %d part(s) acknowledged)",
            job.label,
            entry.video_id,
            len(self.ledger.acknowledged(PLATFORM, resumed.upload_id or "")),
            resumed.plan.count,
        )
        return resumed

    def resumed(self, job: UploadJob, entry: LedgerEntry) -> UploadJob:
        details = {**job.details, **entry.details}
        return (
            super()
            .resumed(job, entry)
            .with_(bucket=details.get("bucket"), object_key=details.get("object_key"), details=details)
        )

    def adopt(self, job: UploadJob, entry: LedgerEntry) -> UploadJob:
        adopted = self.resumed(job, entry)
        return adopted.with_(details={**adopted.details, "confirmed": True})

    def _initiate(self, job: UploadJob, entry: LedgerEntry) -> UploadJob:
        upload_id = self.hook.initiate_multipart_upload(
            job.bucket or "", job.object_key or "", job.details["content_type"]
        )
        self._record(entry, upload_id=upload_id)
        self.log.info("%s: OBS upload %s, %d part(s)", job.label, upload_id, job.plan.count)
        return job.with_(upload_id=upload_id)

    def _put_whole_file(self, job: UploadJob, url: str) -> None:
        """The single-PUT path (files under 20 MB): the signed URL is a credential, used here and dropped."""
        data = job.reader().read(0, job.size)
        headers_md5 = job.details.get("video_md5")
        if url:
            self.hook.put_object(url, data, job.details["content_type"], headers_md5)
        else:  # resumed: a fresh signed PUT for the same object
            signed = self.hook.temp_authority(
                "PUT",
                job.bucket or "",
                job.object_key or "",
                content_type=job.details["content_type"],
                content_md5=headers_md5,
            )
            self.hook.put_object(signed, data, job.details["content_type"], headers_md5)
        self.log.info("%s: uploaded %s bytes in one PUT", job.label, f"{job.size:,}")

    # ------------------------------------------------------------------ catalog

    manifest_columns = ("huawei_vod",)
    manifest_hint = "huawei_vod (Huawei VOD: the name the asset is kept under)"

    @classmethod
    def manifest_target(cls, row: ManifestRow, record: Mapping[str, Any]) -> Target | RowProblem | None:
        from media_upload.catalog.manifest import RowProblem, Target, text

        name = text(record, "huawei_vod")
        if not name:
            return None
        if not row.title or len(row.title.encode()) > MAX_TITLE_BYTES:
            return RowProblem(
                row.line, "title", f"a VOD asset needs a title of 1 to {MAX_TITLE_BYTES} bytes", PLATFORM
            )
        return Target(PLATFORM, name, name, {})

    def catalog_job(
        self,
        row: ManifestRow,
        target: Target,
        source: Source,
        info: SourceInfo,
        digests: Mapping[str, Any],
        block_size: int | None,
    ) -> UploadJob:
        plan = plan_upload(str(source), info.size, PART_RULES, chunks=1, blocks_in_flight=1)
        video_type, content_type = VIDEO_TYPES[info.media.container]
        video_md5 = base64.b64encode(digests["md5"].digest()).decode()
        asset = {
            "title": row.title,
            "video_name": info.name,
            "video_type": video_type,
            "auto_publish": True,
            "video_md5": video_md5,
        }
        return self.row_job(
            row,
            target,
            source,
            info,
            digests,
            plan.blocks.block_size,
            title=row.title,
            details={  # the catalog's chunk tasks carry the bytes: always multipart, never one PUT in the plan
                "mode": "multipart",
                "content_type": content_type,
                "video_md5": video_md5,
                "ready_statuses": list(ready_statuses(auto_publish=True, transcoding=False)),
                "asset": asset,
            },
        )

    # --------------------------------------------------------------------- send

    def send_block(self, job: UploadJob, task: BlockTask, data: bytes) -> str:
        return self.hook.upload_part(
            job.bucket or "", job.object_key or "", job.upload_id or "", task.block.part_number, data
        )

    def upload_gone(self, job: UploadJob, exc: BaseException) -> bool:
        return isinstance(exc, HuaweiVodApiError) and exc.code == "NoSuchUpload"

    # ------------------------------------------------------------------- finish

    def finish(self, job: UploadJob, *, settle: bool = True) -> UploadJob | None:
        """OBS complete (multipart) and ConfirmAssetUpload ``CREATED``, once: claimed in the ledger first.

        With ``settle=False`` (a chunk task, right after the last part) nothing happens unless every part
        is acknowledged, and a finish another task claimed is left to it.
        """
        entry = job.entry(self.ledger)
        if entry.state in HAS_VIDEO:
            return job.with_(details={**job.details, "confirmed": True})
        if entry.state == COMMIT_UNKNOWN:
            return self.reconcile(job) if settle else None
        self.stop_unless_open(job, entry)
        parts = self._parts(job)
        if job.details.get("mode") == "multipart" and parts is None:
            if not settle:
                return None
            raise UploadStopped(
                job, entry.state, f"OBS upload {job.upload_id} does not have all {job.plan.count} part(s)"
            )
        claimed = self.claim_finish(entry)
        if claimed is None:
            return self.finish(job, settle=settle) if settle else None
        try:
            if parts:
                etag = self.hook.complete_multipart_upload(
                    job.bucket or "", job.object_key or "", job.upload_id or "", parts
                )
                self.log.info("%s: OBS joined %d part(s), ETag %s", job.label, len(parts), etag)
            self.hook.confirm_asset_upload(job.video_id or "", "CREATED")
        except HuaweiVodTransportError as exc:
            if not exc.sent:
                self.ledger.transition(claimed, [COMMIT_UNKNOWN], state=UPLOADING)
                raise
            self.log.warning("%s: an answer was lost (%s); asking VOD and OBS what happened", job.label, exc)
            return self.reconcile(job)
        except HuaweiVodApiError as exc:
            if exc.code == "VOD.10126" or exc.status >= 500:  # already confirmed, or it may have been: ask
                return self.reconcile(job)
            self._record(
                claimed,
                state=FAILED,
                reason=f"{exc.operation} refused asset {job.video_id}: {exc.code} {exc.message}",
            )
            raise
        return self._confirmed(claimed, job)

    def _parts(self, job: UploadJob) -> list[UploadedPart] | None:
        """Every part of the upload with its ETag from the ledger, or None when some are missing."""
        if job.details.get("mode") != "multipart":
            return []
        acked = self.ledger.acknowledged(PLATFORM, job.upload_id or "")
        if sorted(acked) != list(range(1, job.plan.count + 1)):
            return None
        return [UploadedPart(number, tag) for number, (tag, _) in sorted(acked.items())]

    def _confirmed(self, entry: LedgerEntry, job: UploadJob) -> UploadJob:
        self._record(entry, state=COMMITTED, reason=None, committed_at=entry.committed_at or now())
        if job.upload_id:
            self.ledger.forget_blocks(PLATFORM, job.upload_id)
        self.log.info("%s: confirmed asset %s as uploaded", job.label, job.video_id)
        return job.with_(details={**job.details, "confirmed": True})

    def reconcile(self, job: UploadJob) -> UploadJob:
        """Find out what a complete or confirm whose answer was lost did, from the asset's status and, for a
        multipart upload, whether OBS still has the upload; then do what is left, once."""
        entry = job.entry(self.ledger)
        status = str(self.hook.show_asset_meta(job.video_id or "").get("status"))
        if status in FAILED_ASSET_STATUSES - _UNCONFIRMED:
            self._record(
                entry,
                state=REJECTED,
                reason=f"VOD reports asset {job.video_id} as {status}",
                finished_at=now(),
            )
            raise UploadStopped(job, REJECTED, f"VOD reports asset {job.video_id} as {status}")
        if status not in _UNCONFIRMED:
            self.log.info("%s: asset %s is %s, so the confirm went through", job.label, job.video_id, status)
            return self._confirmed(entry, job)
        if job.details.get("mode") == "multipart" and job.upload_id:
            try:
                listed = self.hook.list_parts(job.bucket or "", job.object_key or "", job.upload_id)
            except HuaweiVodApiError as exc:
                if exc.code != "NoSuchUpload":
                    raise
                listed = None  # OBS finished the upload: only the confirm is left
            if listed is not None:
                parts = self._parts(job)
                if parts is None:
                    reason = (
                        f"OBS upload {job.upload_id} is open but the ledger lacks some of its parts; "
                        f"`media-upload decide {job.product} --upload-again` and run again to upload anew"
                    )
                    self._record(entry, state=NEEDS_ATTENTION, reason=reason)
                    raise UploadStopped(job, NEEDS_ATTENTION, reason)
                self.hook.complete_multipart_upload(
                    job.bucket or "", job.object_key or "", job.upload_id, parts
                )
        try:
            self.hook.confirm_asset_upload(job.video_id or "", "CREATED")
        except HuaweiVodApiError as exc:
            if exc.code != "VOD.10126":
                raise
        return self._confirmed(entry, job)

    # -------------------------------------------------------------------- ready

    def verdict(self, job: UploadJob, state: str) -> str | None:
        """Ready in one of the job's ``ready_statuses`` (by default ``PUBLISHED``), failed in a failed one."""
        if state in (job.details.get("ready_statuses") or (AssetStatus.PUBLISHED,)):
            return "ready"
        return "failed" if state in FAILED_ASSET_STATUSES else None

    def rejection(self, state: str) -> str:
        return f"VOD reports the asset as {state}"

    # ------------------------------------------------------------------- cleanup

    def give_up(self, job: UploadJob) -> bool:
        """Cancel the asset of an upload that cannot be resumed (its row failed): abort OBS, confirm
        ``CANCELLED``. A resumable upload is kept for the next run. Returns whether it cancelled."""
        entry = job.entry(self.ledger)
        if entry.state != FAILED or not entry.video_id:
            return False
        if entry.upload_id:
            try:
                self.hook.abort_multipart_upload(job.bucket or "", job.object_key or "", entry.upload_id)
            except HuaweiVodError as exc:
                self.log.warning("Could not abort OBS upload %s: %s", entry.upload_id, exc)
            self.ledger.forget_blocks(PLATFORM, entry.upload_id)
        try:
            self.hook.confirm_asset_upload(entry.video_id, "CANCELLED")
        except HuaweiVodApiError as exc:
            if exc.code != "VOD.10126":
                raise
            return False
        self._record(
            entry, reason=f"{entry.reason}; asset {entry.video_id} cancelled", video_id=None, upload_id=None
        )
        return True


def ready_job(job: UploadJob) -> dict[str, Any]:
    """What the readiness sensor needs: ``{asset_id, ready_statuses, job}`` (the job, to record VOD's
    verdict in the ledger)."""
    return {
        "asset_id": job.video_id,
        "ready_statuses": list(job.details.get("ready_statuses") or ()),
        "job": job.as_xcom(),
    }


__all__: Sequence[str] = ("PLATFORM", "HuaweiVodSteps", "ready_job")
