"""Every DAG imports cleanly, and lazada_product_video is wired as documented."""

from __future__ import annotations

from media_upload.operators.lazada import BLOCK_LABEL


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert {"lazada_product_video", "huawei_vod_upload"} <= set(dagbag.dags)


def test_lazada_product_video_shape(dagbag):
    dag = dagbag.dags["lazada_product_video"]
    assert set(dag.params) >= {"video_path", "title", "cover_url", "item_id", "sku_id"}
    assert all(dag.params.get_param(name).description for name in dag.params)
    assert set(dag.task_ids) == {
        "lazada_video.init_upload",
        "lazada_video.upload_block",
        "lazada_video.commit",
        "lazada_video.wait_for_audit",
        "attach_video",
    }
    blocks = dag.get_task("lazada_video.upload_block")
    assert blocks.map_index_template == BLOCK_LABEL
    assert dag.get_task("lazada_video.wait_for_audit").deferrable is True
    assert dag.get_task("lazada_video.commit").retries == 0
    assert dag.get_task("attach_video").upstream_task_ids == {"lazada_video.wait_for_audit"}
    assert dag.get_task("lazada_video.commit").upstream_task_ids == {
        "lazada_video.init_upload",
        "lazada_video.upload_block",
    }


def test_huawei_vod_upload_shape(dagbag):
    dag = dagbag.dags["huawei_vod_upload"]
    assert set(dag.params) >= {"video_path", "title", "description", "category_id", "auto_publish"}
    group = "huawei_vod."
    assert set(dag.task_ids) == {
        group + name
        for name in (
            "create_asset", "initiate_upload", "upload_part", "complete_upload",
            "confirm_upload", "wait_until_ready", "cancel_upload",
        )
    }  # fmt: skip
    cancel = dag.get_task(group + "cancel_upload")
    assert cancel.trigger_rule == "one_failed"
    assert cancel.upstream_task_ids == {
        group + name
        for name in ("create_asset", "initiate_upload", "upload_part", "complete_upload", "confirm_upload")
    }
    assert dag.get_task(group + "complete_upload").trigger_rule == "none_failed"
    assert dag.get_task(group + "complete_upload").retries == 0
    assert (
        dag.get_task(group + "upload_part").map_index_template
        == "part {{ task.part_number }}/{{ task.part_count }}"
    )
    assert dag.get_task(group + "wait_until_ready").deferrable is True


def test_lazada_catalog_videos_shape(dagbag):
    from media_upload.catalog.lazada import product_videos_asset

    dag = dagbag.dags["lazada_catalog_videos"]
    assert dag.schedule == "@daily"
    assert set(dag.params) >= {"manifest", "block_size", "after_line", "fail_on_video_errors"}
    for name in ("init_upload", "upload_block", "commit", "attach"):  # the API work; audit waits are deferred
        task = dag.get_task(f"catalog.{name}")
        assert task.is_mapped and task.max_active_tis_per_dagrun == 8, name
    assert dag.get_task("catalog.wait_for_audit").partial_kwargs["deferrable"] is True
    for name in ("catalog_blocks", "complete_uploads", "videos_to_audit", "videos_to_attach", "report"):
        assert dag.get_task(f"catalog.{name}").trigger_rule == "all_done", name
    assert dag.get_task("catalog.attach").partial_kwargs["outlets"] == [product_videos_asset()]


def test_lazada_product_sync_is_scheduled_on_the_catalogs_asset(dagbag):
    from media_upload.catalog.lazada import product_videos_asset

    dag = dagbag.dags["lazada_product_sync"]
    assert [asset.uri for asset in dag.timetable.asset_condition.objects] == [product_videos_asset().uri]
