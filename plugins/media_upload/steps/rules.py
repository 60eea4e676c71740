"""The rules that decide what happens to one video for one product, on every platform and every path.

A single-video run and a catalog row ask the same question before any call: given what the ledger holds
for this (platform, account, product, content) and for the same bytes elsewhere in the account, is the
video already there, must it stop, must a lost answer be settled first, can another product's video be
reused, can an upload be resumed, or must it go up? :func:`decide` answers it without I/O, so each rule
is tested on plain values and written once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from media_upload.ledger import (
    ATTACHED,
    COMMIT_UNKNOWN,
    HAS_VIDEO,
    NEEDS_ATTENTION,
    REJECTED,
    UPLOADING,
    LedgerEntry,
)


class Action(StrEnum):
    ATTACHED = "attached"  # the video is on its product already
    HAS_VIDEO = "has_video"  # the platform has the video; wait for it and attach
    STOP = "stop"  # rejected content, or a row a person must settle: nothing is sent
    RECONCILE = "reconcile"  # a commit's answer was lost: ask the platform before anything else
    REUSE = "reuse"  # another product of the account has a video of the same bytes: use it
    RESUME = "resume"  # an upload of these bytes stopped midway: send what is missing
    UPLOAD = "upload"  # nothing usable is known: a new upload


@dataclass(frozen=True)
class Decision:
    """What to do, the ledger row it rests on (the job's own, or the other product's), and why."""

    action: Action
    entry: LedgerEntry | None = None
    reason: str = ""
    #: For :attr:`Action.STOP`: the ledger state that stops it (``rejected`` or ``needs_attention``).
    state: str = ""


def decide(
    own: LedgerEntry | None,
    same_content: Iterable[LedgerEntry],
    *,
    product: str,
    size: int,
    upload_again: bool = False,
    done_state: str = ATTACHED,
) -> Decision:
    """The decision for one video: ``own`` is its ledger row (None when new), ``same_content`` every row of
    the account with the same bytes, ``size`` the bytes now in the source.

    ``upload_again`` is a person's choice to upload content whose earlier upload needs attention;
    ``done_state`` the state that ends a video's work on its platform (``attached``, or ``audited`` where
    videos go on no product).
    """
    others = [row for row in same_content if row.product != product]
    if own is not None and own.state == done_state and own.video_id:
        done = "carries video" if done_state == ATTACHED else f"{done_state} as"
        return Decision(Action.ATTACHED, own, f"already {done} {own.video_id}")
    if own is not None and own.state in HAS_VIDEO and own.video_id:
        return Decision(Action.HAS_VIDEO, own)
    if own is not None and own.state == REJECTED:
        return Decision(
            Action.STOP, own, f"this content was rejected before ({own.reason}); change the video", REJECTED
        )
    if (refused := next((row for row in others if row.state == REJECTED), None)) is not None:
        return Decision(
            Action.STOP,
            refused,
            f"these bytes were rejected for {refused.label or refused.product} ({refused.reason}); "
            "change the video",
            REJECTED,
        )
    if own is not None and own.state == NEEDS_ATTENTION and not upload_again:
        return Decision(
            Action.STOP, own, f"needs attention: {own.reason or 'an earlier upload'}", NEEDS_ATTENTION
        )
    if own is not None and own.state == COMMIT_UNKNOWN and (own.upload_id or own.video_id):
        return Decision(Action.RECONCILE, own)
    twin = next((row for row in others if row.video_id and row.state in HAS_VIDEO), None)
    if twin is not None:
        return Decision(Action.REUSE, twin, f"reuses the video uploaded for {twin.label or twin.product}")
    if (
        own is not None
        and own.state == UPLOADING
        and own.file_size == size
        and (own.upload_id or own.video_id)
    ):
        return Decision(Action.RESUME, own)
    return Decision(Action.UPLOAD, own)
