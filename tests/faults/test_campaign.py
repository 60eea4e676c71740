"""The seeded fault campaign: at least 50 videos, one request in ten faulted, across both platforms."""

from __future__ import annotations

import pytest

from tests.faults.campaign import Campaign, markdown, run_campaign

pytestmark = pytest.mark.faults


def test_a_seeded_campaign_loses_nothing_and_never_uploads_twice(tmp_path):
    campaign = Campaign()
    figures = run_campaign(tmp_path, campaign)
    print(markdown(figures, campaign))
    assert sum(figures.videos.values()) >= 50
    assert sum(sum(kinds.values()) for kinds in figures.faults.values()) >= 50  # the faults did happen
    assert set(figures.faults["lazada"]) >= {"unavailable", "throttle", "reset", "drop", "slow"}
    assert figures.limited["lazada"] > 0  # the call limit was met too, and waited out
    # Every video is on its product (Lazada, Shopee) or ready (VOD), or marked for a person: nothing is lost.
    assert set(figures.finished["lazada"]) <= {"attached", "needs_attention"}, figures.finished
    assert set(figures.finished["shopee"]) <= {"attached", "needs_attention"}, figures.finished
    assert set(figures.faults["shopee"]) >= {"unavailable", "throttle", "reset", "drop", "slow"}
    assert set(figures.finished["huawei_vod"]) <= {"committed", "audited", "needs_attention"}, (
        figures.finished
    )
    assert figures.second_videos == 0
    assert figures.corrupted == 0
    assert figures.second_run_bytes_requests == 0
