"""The Lazada upload steps, each reading the ledger before it calls Lazada and writing it as it learns.

``begin`` (InitCreateVideo, or resume, or reuse) → ``send`` (UploadVideoBlock for a chunk's blocks) →
``commit`` (CompleteCreateVideo, reconciled when its answer is lost) → the audit wait → ``attach``
(UpdateProduct). The single-video operators and the catalog's batch operators both call these.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from media_upload.hooks.lazada import (
    TRANSIENT_CODES,
    LazadaApiError,
    LazadaHook,
    LazadaRefusal,
    LazadaTransportError,
)
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
from media_upload.protocols.lazada import (
    BLOCK_RULES,
    FAILED_VIDEO_STATES,
    MAX_BLOCK_BYTES,
    MAX_FILE_BYTES,
    TERMINAL_VIDEO_STATES,
    VIDEO_USAGES,
    VideoState,
    check_video_metadata,
)
from media_upload.steps.common import PlatformSteps, TargetRefused, UploadJob, UploadStopped, each
from media_upload.transfer.engine import BlockTask
from media_upload.transfer.plan import plan_upload
from media_upload.transfer.source import Source, SourceInfo

if TYPE_CHECKING:
    from media_upload.catalog.manifest import ManifestRow, RowProblem, Target

PLATFORM = "lazada"
#: How the emulator (and, by its reading, Lazada) answers a second commit of a committed upload.
_ALREADY_COMMITTED = re.compile(r"already committed as video (\d+)")
#: UploadVideoBlock's answer for an upload id Lazada no longer knows.
_EXPIRED_UPLOAD = re.compile(r"uploadId .* (does not exist|has expired)", re.IGNORECASE)


class LazadaSteps(PlatformSteps):
    """The ledger-aware Lazada upload steps for one account."""

    platform = PLATFORM
    title = "Lazada"
    lineage_naming = PlatformNaming("lazada", lambda c: c.gateway, lambda c: "", "video", "product")
    hook_path = "media_upload.hooks.lazada.LazadaHook"
    state_reader_path = "media_upload.triggers.lazada.LazadaStateReader"
    transport_error = LazadaTransportError
    api_error = LazadaApiError
    hook: LazadaHook

    max_file_bytes = MAX_FILE_BYTES

    def final_states(self, job: UploadJob) -> list[str]:
        return sorted(TERMINAL_VIDEO_STATES)

    def push_account(self) -> tuple[str, str] | None:
        credentials = self.hook.credentials
        return (credentials.app_key, str(credentials.seller_id)) if credentials.push else None

    # -------------------------------------------------------------------- begin

    def start(self, job: UploadJob, entry: LedgerEntry) -> UploadJob:
        upload_id = self.hook.init_create_video(job.name, job.size)
        self.uploading(job, entry, upload_id=upload_id, video_id=None)
        self.log.info(
            "%s: InitCreateVideo gave upload id %s (%d block(s))", job.label, upload_id, job.plan.count
        )
        return job.with_(upload_id=upload_id)

    def resume(self, job: UploadJob, entry: LedgerEntry) -> UploadJob | None:
        return super().resume(job, entry) if entry.upload_id else None

    # ------------------------------------------------------------------ catalog

    manifest_columns = (
        "seller_sku", "item_id", "sku_id", "video_usage", "lazada_seller_sku", "lazada_item_id", "lazada_sku_id",
    )  # fmt: skip
    manifest_hint = "seller_sku or item_id (Lazada)"

    @classmethod
    def manifest_target(cls, row: ManifestRow, record: Mapping[str, Any]) -> Target | RowProblem | None:
        from media_upload.catalog.manifest import RowProblem, Target, quoted, text

        def value(name: str) -> str:
            return text(record, f"lazada_{name}") or text(record, name)

        def problem(field: str, reason: str) -> RowProblem:
            return RowProblem(row.line, field, reason, PLATFORM)

        seller_sku, item_id, sku_id = value("seller_sku"), value("item_id"), value("sku_id")
        if not seller_sku and not item_id:
            return problem("sku_id", "sku_id needs item_id") if sku_id else None
        if item_id and not item_id.isdigit():
            return problem("item_id", f"{quoted(item_id)} is not a number")
        sku_ids = tuple(part.strip() for part in sku_id.split(",") if part.strip())
        if sku_ids and not item_id:
            return problem("sku_id", "sku_id needs item_id (UpdateProduct names SKUs of one item)")
        if any(not part.isdigit() for part in sku_ids):
            return problem("sku_id", f"{quoted(sku_id)} is not a number or comma-separated numbers")
        try:
            check_video_metadata(row.title, row.cover_url)
        except ValueError as exc:
            return problem("title" if not row.title else "cover_url", str(exc))
        if row.block_size is not None and row.block_size > MAX_BLOCK_BYTES:
            return problem(
                "block_size", f"{row.block_size:,} is more than Lazada's {MAX_BLOCK_BYTES:,} bytes per block"
            )
        video_usage = text(record, "video_usage") or "pro_main_video"
        if video_usage not in VIDEO_USAGES:
            return problem("video_usage", f"{quoted(video_usage)} is not one of {', '.join(VIDEO_USAGES)}")
        product = f"item:{item_id}" if item_id else f"sku:{seller_sku}"
        fields = {
            "seller_sku": seller_sku or None,
            "item_id": item_id or None,
            "sku_ids": sku_ids,
            "video_usage": video_usage,
        }
        return Target(PLATFORM, product, seller_sku or f"item {item_id}", fields)

    def catalog_job(
        self,
        row: ManifestRow,
        target: Target,
        source: Source,
        info: SourceInfo,
        digests: Mapping[str, Any],
        block_size: int | None,
    ) -> UploadJob:
        plan = plan_upload(
            str(source),
            info.size,
            BLOCK_RULES,
            block_size=row.block_size or block_size,
            chunks=1,
            blocks_in_flight=1,
        )
        fields = target.fields
        try:
            item_id, sku_ids = self._product(fields["item_id"], fields["seller_sku"], fields["sku_ids"])
        except LazadaApiError as exc:
            raise TargetRefused(
                "item_id" if fields["item_id"] else "seller_sku",
                f"{target.label}: {exc.message} ({exc.code}); check the product on Lazada",
            ) from None
        return self.row_job(
            row,
            target,
            source,
            info,
            digests,
            plan.blocks.block_size,
            title=row.title,
            cover_url=row.cover_url,
            video_usage=fields["video_usage"],
            seller_sku=fields["seller_sku"],
            item_id=item_id,
            sku_ids=sku_ids,
        )

    def _product(
        self, item_id: str | None, seller_sku: str | None, sku_ids: Sequence[str]
    ) -> tuple[str, tuple[str, ...]]:
        """The item id and SKU ids a video goes on, read from Lazada before any upload."""
        if item_id:
            product = self.hook.get_product_item(item_id)
            known = {str(sku["SkuId"]) for sku in product.get("skus", [])}
            missing = [sku for sku in sku_ids if sku not in known]
            if missing:
                raise LazadaApiError(
                    "/product/item/get", "SKU_NOT_FOUND", f"item {item_id} has no SKU {', '.join(missing)}"
                )
            return str(item_id), tuple(sku_ids) or tuple(sorted(known))
        if seller_sku in self.prepared:
            product = self.prepared[seller_sku]
            if product is None:
                raise LazadaRefusal(
                    "/products/get", "SKU_NOT_FOUND", f"no product has SellerSku {seller_sku!r}"
                )
        else:
            product = self.hook.find_product(seller_sku or "")
        skus = tuple(
            str(sku["SkuId"]) for sku in product.get("skus", []) if sku.get("SellerSku") == seller_sku
        )
        return str(product["item_id"]), skus

    def prepare(self, targets: Sequence[Target]) -> None:
        """The products of every SellerSku the rows name, by the fifty (GetProducts), several at once."""
        skus = sorted(
            {
                str(t.fields["seller_sku"])
                for t in targets
                if t.fields.get("seller_sku") and not t.fields.get("item_id")
            }
        )
        batches = [skus[start : start + 50] for start in range(0, len(skus), 50)]
        for batch, found in zip(batches, each(batches, self.hook.find_products), strict=True):
            if isinstance(found, BaseException):  # the rows of this batch are looked up one by one
                self.log.warning(
                    "Reading %d products at once failed (%s); reading them one by one", len(batch), found
                )
                continue
            self.prepared.update({sku: found.get(sku) for sku in batch})

    # --------------------------------------------------------------------- send

    def send_block(self, job: UploadJob, task: BlockTask, data: bytes) -> str:
        return self.hook.upload_video_block(job.upload_id or "", task.block.number, job.plan.count, data)

    def upload_gone(self, job: UploadJob, exc: BaseException) -> bool:
        return isinstance(exc, LazadaApiError) and bool(_EXPIRED_UPLOAD.search(exc.message))

    # ------------------------------------------------------------------- commit

    def finish(self, job: UploadJob, *, settle: bool = True) -> UploadJob | None:
        return self.commit(job, settle=settle)

    def commit(
        self, job: UploadJob, parts: Sequence[Mapping[str, Any]] | None = None, *, settle: bool = True
    ) -> UploadJob | None:
        """CompleteCreateVideo once per upload: claimed in the ledger first, reconciled if its answer is lost.

        ``parts`` default to the blocks the ledger holds. With ``settle=False`` (a chunk task committing as
        soon as the last block is in) nothing happens unless every block is acknowledged, and a commit
        another task claimed is left to it: returns None then.
        """
        entry = job.entry(self.ledger)
        if entry.state in HAS_VIDEO and entry.video_id:
            return job.with_(video_id=entry.video_id)
        if entry.state == COMMIT_UNKNOWN:
            return self.reconcile(job, parts) if settle else None
        self.stop_unless_open(job, entry)
        count = job.plan.count
        if parts is None or sorted(int(part["partNumber"]) for part in parts) != list(range(1, count + 1)):
            acked = self.ledger.acknowledged(PLATFORM, job.upload_id or "")
            parts = [{"partNumber": number, "eTag": tag} for number, (tag, _) in sorted(acked.items())]
        numbers = [int(part["partNumber"]) for part in parts]
        if numbers != list(range(1, count + 1)):
            if not settle:
                return None
            missing = sorted(set(range(1, count + 1)) - set(numbers))
            raise UploadStopped(
                job, entry.state, f"upload {job.upload_id} is missing block(s) {missing} of {count}"
            )
        claimed = self.claim_finish(entry)
        if claimed is None:  # another task claimed it first
            return self.commit(job, parts, settle=settle) if settle else None
        try:
            video_id = self.hook.complete_create_video(
                job.upload_id or "",
                [dict(part) for part in parts],
                job.title,
                job.cover_url or "",
                job.video_usage or "pro_main_video",
            )
        except LazadaTransportError as exc:
            if not exc.sent:
                self.ledger.transition(claimed, [COMMIT_UNKNOWN], state=UPLOADING)
                raise
            self.log.warning(
                "%s: the answer to CompleteCreateVideo was lost (%s); asking Lazada again", job.label, exc
            )
            return self.reconcile(job, parts, lost=str(exc))
        except LazadaApiError as exc:
            adopted = _committed_video(exc)
            if adopted:
                return self._committed(claimed, job, adopted)
            if exc.code in TRANSIENT_CODES:  # the backend may have made the video before it failed: ask
                return self.reconcile(job, parts, lost=f"{exc.code}: {exc.message}")
            self._record(
                claimed,
                state=FAILED,
                reason=f"CompleteCreateVideo refused upload {job.upload_id}: {exc.code} {exc.message}",
            )
            raise
        return self._committed(claimed, job, video_id)

    def _committed(self, entry: LedgerEntry, job: UploadJob, video_id: str) -> UploadJob:
        self._record(
            entry, state=COMMITTED, video_id=video_id, reason=None, committed_at=entry.committed_at or now()
        )
        if job.upload_id:
            self.ledger.forget_blocks(PLATFORM, job.upload_id)
        self.log.info("%s: upload %s is video %s", job.label, job.upload_id, video_id)
        return job.with_(video_id=video_id)

    def reconcile(
        self, job: UploadJob, parts: Sequence[Mapping[str, Any]] | None = None, lost: str | None = None
    ) -> UploadJob:
        """Find out what a commit whose answer was lost did, by repeating it (as the ledger holds the parts).

        A video id in the answer, as a success or as "already committed as video N", is adopted. Another
        transport failure leaves the question open for the next try. Any other answer means it cannot be
        known from here: the row needs attention, and nothing is uploaded again until a person decides.
        """
        entry = job.entry(self.ledger)
        if parts is None:
            acked = self.ledger.acknowledged(PLATFORM, job.upload_id or "")
            parts = [{"partNumber": number, "eTag": tag} for number, (tag, _) in sorted(acked.items())]
        try:
            video_id = self.hook.complete_create_video(
                job.upload_id or "",
                [dict(part) for part in parts],
                job.title,
                job.cover_url or "",
                job.video_usage or "pro_main_video",
            )
        except LazadaTransportError:
            raise  # still no answer: the row stays commit_unknown, a retry asks again
        except LazadaApiError as exc:
            adopted = _committed_video(exc)
            if adopted:
                return self._committed(entry, job, adopted)
            if exc.code in TRANSIENT_CODES:
                raise  # passing trouble: the row stays commit_unknown, a retry asks again
            reason = (
                f"CompleteCreateVideo of upload {job.upload_id} was sent at {entry.committed_at or '?'} and its answer "
                f"was lost{f' ({lost})' if lost else ''}; asking again answered {exc.code}: {exc.message}, so whether "
                f"Lazada made a video is unknown. Look in Seller Center (Media Center) for a video titled "
                f"{job.title!r}: if it is there, adopt it with `media-upload decide {job.product} --video-id ID`; "
                f"if not, `media-upload decide {job.product} --upload-again` and run again"
            )
            self._record(entry, state=NEEDS_ATTENTION, reason=reason)
            raise UploadStopped(job, NEEDS_ATTENTION, reason) from None
        return self._committed(entry, job, video_id)

    # ------------------------------------------------------------- audit, attach

    def verdict(self, job: UploadJob, state: str) -> str | None:
        if state == VideoState.AUDIT_SUCCESS:
            return "ready"
        return "failed" if state in FAILED_VIDEO_STATES else None

    def rejection(self, state: str) -> str:
        return f"Lazada's audit ended in {state}"

    def attach(self, job: UploadJob) -> dict[str, Any]:
        """UpdateProduct with the job's video on its item (found by SellerSku when no item id is given)."""
        item_id, sku_ids = job.item_id, list(job.sku_ids)
        if not item_id:
            product = self.hook.find_product(job.seller_sku or "")
            item_id = str(product["item_id"])
            sku_ids = [
                str(sku["SkuId"]) for sku in product.get("skus", []) if sku.get("SellerSku") == job.seller_sku
            ]
        # The plan read the product for this run: its SKUs are known, so UpdateProduct alone (one call).
        result = self.attach_video(str(item_id), job.video_id or "", sku_ids, read_first=not job.sku_ids)
        self.attached(job, item_id=str(item_id))
        return result

    def attach_video(
        self, item_id: str, video_id: str, sku_ids: Sequence[str], *, read_first: bool = True
    ) -> dict[str, Any]:
        """UpdateProduct putting ``video_id`` on ``item_id`` (its SKUs ``sku_ids``, or all); the ledger rows
        of this video for this item become attached. The one way a Lazada video goes on a product."""
        result = self.hook.set_product_video(item_id, video_id, list(sku_ids), read_first=read_first)
        for entry in self.ledger.with_video(PLATFORM, self.account, video_id):
            if entry.product in (f"item:{item_id}", "") and entry.state != ATTACHED:
                self._record(entry, state=ATTACHED, reason=None, finished_at=now())
        return {**result, "item_id": str(item_id)}

    def record_reuse(self, job: UploadJob, of: str) -> None:
        """The job's product gets the video already made from the same bytes for ``of``: no upload."""
        self.record(job, state=COMMITTED, video_id=job.video_id, reason=f"reuses the video uploaded for {of}")


def _committed_video(exc: LazadaApiError) -> str | None:
    match = _ALREADY_COMMITTED.search(exc.message) if exc.code == "FAIL_TO_BLOCK_COMPLETE" else None
    return match.group(1) if match else None
