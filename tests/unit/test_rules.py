"""The rules every upload path shares, on plain values: one decision per (platform, account, product,
content), from its ledger row and the account's rows of the same bytes."""

from __future__ import annotations

import pytest

from media_upload.ledger import (
    ATTACHED,
    AUDITED,
    COMMIT_UNKNOWN,
    COMMITTED,
    FAILED,
    NEEDS_ATTENTION,
    PLANNED,
    REJECTED,
    UPLOADING,
    LedgerEntry,
)
from media_upload.steps.rules import Action, decide

SIZE = 1_000


def row(state: str, product: str = "item:1", **fields) -> LedgerEntry:
    return LedgerEntry("shopee", "shop", product, "sha", state, **{"file_size": SIZE, **fields})


def decided(own=None, others=(), **options):
    return decide(own, [*(r for r in [own] if r), *others], product="item:1", size=SIZE, **options)


def test_nothing_known_is_an_upload():
    assert decided().action == Action.UPLOAD


@pytest.mark.parametrize(
    ("own", "action"),
    [
        (row(ATTACHED, video_id="v"), Action.ATTACHED),
        (row(COMMITTED, video_id="v"), Action.HAS_VIDEO),
        (row(AUDITED, video_id="v"), Action.HAS_VIDEO),
        (row(REJECTED, reason="too short"), Action.STOP),
        (row(NEEDS_ATTENTION, reason="lost"), Action.STOP),
        (row(COMMIT_UNKNOWN, upload_id="u"), Action.RECONCILE),
        (row(UPLOADING, upload_id="u"), Action.RESUME),
        (row(UPLOADING, upload_id="u", file_size=SIZE + 1), Action.UPLOAD),  # the file changed
        (row(FAILED, upload_id="u"), Action.UPLOAD),
        (row(PLANNED), Action.UPLOAD),
    ],
)
def test_own_row(own, action):
    assert decided(own).action == action


def test_stops_say_why_and_which_state():
    rejected = decided(row(REJECTED, reason="Video is too short"))
    assert (rejected.state, rejected.reason) == (
        REJECTED,
        "this content was rejected before (Video is too short); change the video",
    )
    attention = decided(row(NEEDS_ATTENTION, reason="commit answer lost"))
    assert (attention.state, attention.reason) == (NEEDS_ATTENTION, "needs attention: commit answer lost")
    assert decided(row(NEEDS_ATTENTION, reason="x"), upload_again=True).action == Action.UPLOAD


def test_other_products_of_the_same_bytes():
    twin = row(COMMITTED, product="item:2", video_id="v2", label="twin")
    reused = decided(others=[twin])
    assert (reused.action, reused.entry, reused.reason) == (
        Action.REUSE,
        twin,
        "reuses the video uploaded for twin",
    )
    refused = decided(others=[row(REJECTED, product="item:3", label="other", reason="no")])
    assert (refused.action, refused.state) == (Action.STOP, REJECTED)
    assert refused.reason == "these bytes were rejected for other (no); change the video"
    # A twin without a usable video is no twin.
    assert decided(others=[row(UPLOADING, product="item:2", upload_id="u")]).action == Action.UPLOAD


def test_the_own_video_comes_before_a_twins_and_a_rejection_elsewhere():
    own = row(COMMITTED, video_id="mine")
    others = [row(COMMITTED, product="item:2", video_id="v2"), row(REJECTED, product="item:3")]
    assert (decided(own, others).action, decided(own, others).entry) == (Action.HAS_VIDEO, own)
