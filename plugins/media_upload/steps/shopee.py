"""The Shopee upload steps, each reading the ledger before it calls Shopee and writing it as it learns.

``start`` (init_video_upload with the whole file's MD5 and size) → ``send_block`` (upload_video_part, one
4 MB part per block, ``part_seq`` from 0) → ``finish`` (complete_video_upload, claimed in the ledger first;
a lost answer is settled by asking get_video_upload_result and, while the upload still looks open,
completing it again: Shopee answers a second complete "already completed") → the wait for
``SUCCEEDED`` → ``attach`` (update_item with the ``video_upload_id``). Shopee's ``video_upload_id`` is
both the upload id and, once it succeeded, the id that goes on items: the ledger's video id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from media_upload.hooks.shopee import ShopeeApiError, ShopeeHook, ShopeeTransportError
from media_upload.ledger import (
    ATTACHED,
    COMMIT_UNKNOWN,
    COMMITTED,
    FAILED,
    HAS_VIDEO,
    NEEDS_ATTENTION,
    UPLOADING,
    LedgerEntry,
    now,
)
from media_upload.lineage import PlatformNaming
from media_upload.protocols.shopee import MAX_FILE_BYTES_DECIMAL, VideoUploadStatus, part_rules, video_problem
from media_upload.steps.common import PlatformSteps, TargetRefused, UploadJob, UploadStopped, each
from media_upload.transfer.engine import BlockTask
from media_upload.transfer.plan import plan_upload
from media_upload.transfer.source import Source, SourceError, SourceInfo

if TYPE_CHECKING:
    from media_upload.catalog.manifest import ManifestRow, RowProblem, Target

PLATFORM = "shopee"
#: Upload statuses that mean the complete went through.
_COMPLETED = frozenset({VideoUploadStatus.TRANSCODING, VideoUploadStatus.SUCCEEDED, VideoUploadStatus.FAILED})


class ShopeeSteps(PlatformSteps):
    """The ledger-aware Shopee upload steps for one shop."""

    platform = PLATFORM
    title = "Shopee"
    lineage_naming = PlatformNaming(
        "shopee", lambda c: c.base_url, lambda c: f"shop/{c.shop_id}/", "video", "item"
    )
    unit = "parts"
    finish_verb = "completed"
    video_noun = "upload"
    hook_path = "media_upload.hooks.shopee.ShopeeHook"
    state_reader_path = "media_upload.triggers.shopee.ShopeeStateReader"
    transport_error = ShopeeTransportError
    api_error = ShopeeApiError
    hook: ShopeeHook

    max_file_bytes = MAX_FILE_BYTES_DECIMAL + 1

    def final_states(self, job: UploadJob) -> list[str]:
        return [VideoUploadStatus.SUCCEEDED, VideoUploadStatus.FAILED, VideoUploadStatus.CANCELLED]

    # -------------------------------------------------------------------- begin

    def start(self, job: UploadJob, entry: LedgerEntry) -> UploadJob:
        upload_id = self.hook.init_video_upload(job.details["file_md5"], job.size)
        self.uploading(job, entry, upload_id=upload_id, video_id=None)
        self.log.info("%s: init_video_upload gave %s (%d part(s))", job.label, upload_id, job.plan.count)
        return job.with_(upload_id=upload_id)

    def resume(self, job: UploadJob, entry: LedgerEntry) -> UploadJob | None:
        return super().resume(job, entry) if entry.upload_id else None

    # ------------------------------------------------------------------ catalog

    manifest_columns = ("shopee_item_id",)
    manifest_hint = "shopee_item_id (Shopee)"

    @classmethod
    def manifest_target(cls, row: ManifestRow, record: Mapping[str, Any]) -> Target | RowProblem | None:
        from media_upload.catalog.manifest import RowProblem, Target, quoted, text

        item_id = text(record, "shopee_item_id")
        if not item_id:
            return None
        if not item_id.isdigit():
            return RowProblem(row.line, "shopee_item_id", f"{quoted(item_id)} is not a number", PLATFORM)
        return Target(PLATFORM, f"item:{item_id}", f"shopee {item_id}", {"item_id": item_id})

    def catalog_job(
        self,
        row: ManifestRow,
        target: Target,
        source: Source,
        info: SourceInfo,
        digests: Mapping[str, Any],
        block_size: int | None,
    ) -> UploadJob:
        self.check_video(source, info)
        part_size = self.hook.credentials.part_size
        plan = plan_upload(
            str(source), info.size, part_rules(part_size), block_size=part_size, chunks=1, blocks_in_flight=1
        )
        item_id = str(target.fields["item_id"])
        self.check_item(item_id, "shopee_item_id")
        return self.row_job(
            row,
            target,
            source,
            info,
            digests,
            plan.blocks.block_size,
            title=row.title or info.name,
            item_id=item_id,
            details={"file_md5": digests["md5"].hexdigest()},
        )

    @staticmethod
    def check_video(source: Source, info: SourceInfo) -> None:
        """Shopee's limits, before any upload: it checks them only after transcoding, long after the bytes
        went up. Raises :class:`SourceError` naming the file, the value and the limit."""
        if info.size > MAX_FILE_BYTES_DECIMAL:
            raise SourceError(
                f"{source} is {info.size:,} bytes; Shopee takes videos of at most {MAX_FILE_BYTES_DECIMAL:,}"
            )
        if problem := video_problem(info.media):
            raise SourceError(
                f"{source}: {problem} ({info.media.describe()}); Shopee takes MP4 videos of 10 to 60 s, at most "
                "1280x1280"
            )

    def prepare(self, targets: Sequence[Target]) -> None:
        """The items the rows name, by the fifty (get_item_base_info), several at once."""
        ids = sorted({str(target.fields["item_id"]) for target in targets})
        batches = [ids[start : start + 50] for start in range(0, len(ids), 50)]
        for batch, found in zip(batches, each(batches, self.hook.get_items), strict=True):
            if isinstance(found, BaseException):  # the rows of this batch are looked up one by one
                self.log.warning(
                    "Reading %d items at once failed (%s); reading them one by one", len(batch), found
                )
                continue
            self.prepared.update({item_id: item_id in found for item_id in batch})

    def check_item(self, item_id: str, field: str) -> None:
        """The item must be in the shop (read before any upload); :class:`TargetRefused` naming ``field``."""
        known = (
            self.prepared[item_id] if item_id in self.prepared else item_id in self.hook.get_items([item_id])
        )
        if not known:
            raise TargetRefused(
                field,
                f"Shopee has no item {item_id} in shop {self.hook.credentials.shop_id}; check the {field}",
            )

    # --------------------------------------------------------------------- send

    def send_block(self, job: UploadJob, task: BlockTask, data: bytes) -> str:
        return self.hook.upload_video_part(job.upload_id or "", task.block.number, data)

    def upload_gone(self, job: UploadJob, exc: BaseException) -> bool:
        return isinstance(exc, ShopeeApiError) and exc.code == "error_invalid_upload_id"

    # ------------------------------------------------------------------- finish

    def finish(self, job: UploadJob, *, settle: bool = True) -> UploadJob | None:
        entry = job.entry(self.ledger)
        if entry.state in HAS_VIDEO and entry.video_id:
            return job.with_(video_id=entry.video_id)
        if entry.state == COMMIT_UNKNOWN:
            return self.reconcile(job) if settle else None
        self.stop_unless_open(job, entry)
        acked = self.ledger.acknowledged(PLATFORM, job.upload_id or "")
        if sorted(acked) != list(range(1, job.plan.count + 1)):
            if not settle:
                return None
            missing = sorted(set(range(1, job.plan.count + 1)) - set(acked))
            raise UploadStopped(
                job, entry.state, f"upload {job.upload_id} is missing part(s) {[n - 1 for n in missing]}"
            )
        claimed = self.claim_finish(entry)
        if claimed is None:  # another task claimed it first
            return self.finish(job, settle=settle) if settle else None
        try:
            self._complete(job, entry)
        except ShopeeTransportError as exc:
            if not exc.sent:
                self.ledger.transition(claimed, [COMMIT_UNKNOWN], state=UPLOADING)
                raise
            self.log.warning(
                "%s: the answer to complete_video_upload was lost (%s); asking Shopee", job.label, exc
            )
            return self.reconcile(job)
        except ShopeeApiError as exc:
            if exc.code == "error_already_completed" or exc.code in ("error_server", "error_rate_limit"):
                return self.reconcile(job)  # completed before, or it may have been: ask
            self._record(
                claimed,
                state=FAILED,
                reason=f"complete_video_upload refused {job.upload_id}: {exc.error} {exc.message}",
            )
            raise
        return self._completed(claimed, job)

    def _complete(self, job: UploadJob, entry: LedgerEntry) -> None:
        self.hook.complete_video_upload(
            job.upload_id or "", list(range(job.plan.count)), _upload_cost_ms(entry)
        )

    def _completed(self, entry: LedgerEntry, job: UploadJob) -> UploadJob:
        self._record(
            entry,
            state=COMMITTED,
            video_id=job.upload_id,
            reason=None,
            committed_at=entry.committed_at or now(),
        )
        if job.upload_id:
            self.ledger.forget_blocks(PLATFORM, job.upload_id)
        self.log.info("%s: upload %s is complete; Shopee transcodes it", job.label, job.upload_id)
        return job.with_(video_id=job.upload_id)

    def reconcile(self, job: UploadJob) -> UploadJob:
        """Find out what a complete whose answer was lost did: an upload Shopee transcodes (or judged) was
        completed; one that still looks open is completed again, which cannot make a second video: the
        video is the upload id init gave, whatever completes it (a second complete is answered "already
        completed"). An upload Shopee no longer knows needs a person."""
        entry = job.entry(self.ledger)
        try:
            status = str(self.hook.get_video_upload_result(job.upload_id or "")["status"])
        except ShopeeApiError as exc:
            if exc.code != "error_invalid_upload_id":
                raise
            reason = (
                f"complete_video_upload of {job.upload_id} was sent and its answer lost, and Shopee no longer knows "
                f"the upload ({exc.message}); whether a video was made is unknown. "
                f"`media-upload decide {job.product} --platform shopee --upload-again` and run again"
            )
            self._record(entry, state=NEEDS_ATTENTION, reason=reason)
            raise UploadStopped(job, NEEDS_ATTENTION, reason) from None
        if status == VideoUploadStatus.CANCELLED:
            self._record(entry, state=FAILED, reason=f"upload {job.upload_id} was cancelled")
            raise UploadStopped(
                job, FAILED, f"upload {job.upload_id} was cancelled; the next run uploads anew"
            )
        if status not in _COMPLETED:  # INITIATED: not completed yet, or completed and not visible yet
            try:
                self._complete(job, entry)
            except ShopeeApiError as exc:
                if exc.code != "error_already_completed":
                    raise
        return self._completed(entry, job)

    # ------------------------------------------------------------- wait, attach

    def verdict(self, job: UploadJob, state: str) -> str | None:
        if state == VideoUploadStatus.SUCCEEDED:
            return "ready"
        return "failed" if state in (VideoUploadStatus.FAILED, VideoUploadStatus.CANCELLED) else None

    def rejection(self, state: str) -> str:
        return f"Shopee's transcoding ended in {state}"

    def attach(self, job: UploadJob) -> dict[str, Any]:
        """update_item with the job's succeeded upload on its item."""
        result = self.attach_video(str(job.item_id), job.video_id or "")
        self.attached(job, item_id=str(job.item_id))
        return result

    def attach_video(self, item_id: str, video_upload_id: str) -> dict[str, Any]:
        """The one way a Shopee video goes on an item; the ledger rows of it for this item become attached."""
        result = self.hook.set_item_video(item_id, video_upload_id)
        for entry in self.ledger.with_video(PLATFORM, self.account, video_upload_id):
            if entry.product in (f"item:{item_id}", "") and entry.state != ATTACHED:
                self._record(entry, state=ATTACHED, reason=None, finished_at=now())
        return result

    # ------------------------------------------------------------------- cleanup

    def give_up(self, job: UploadJob) -> bool:
        """Cancel an upload that cannot be resumed (its row failed before the complete); one the next run can
        resume is kept. Returns whether it cancelled."""
        entry = job.entry(self.ledger)
        if entry.state != FAILED or not entry.upload_id:
            return False
        try:
            self.hook.cancel_video_upload(entry.upload_id)
        except ShopeeApiError as exc:
            if exc.code not in ("error_invalid_upload_id", "error_already_completed"):
                raise
            return False
        self.ledger.forget_blocks(PLATFORM, entry.upload_id)
        self._record(entry, reason=f"{entry.reason}; upload {entry.upload_id} cancelled", upload_id=None)
        return True


def _upload_cost_ms(entry: LedgerEntry) -> int:
    """``report_data.upload_cost``: milliseconds since the upload started (Shopee tracks upload speed)."""
    try:
        started = datetime.fromisoformat(entry.upload_started_at or "")
    except ValueError:
        return 0
    return max(int((datetime.now(UTC) - started).total_seconds() * 1000), 0)
