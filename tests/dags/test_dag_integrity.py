"""Every DAG imports cleanly, and each is wired as documented."""

from __future__ import annotations

from airflow.sdk import Asset, AssetAlias

from media_upload.catalog.operators import catalog_videos_asset, product_video_events, product_videos_asset
from media_upload.operators.base import CHUNK_LABEL


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert {
        "lazada_product_video",
        "huawei_vod_upload",
        "shopee_product_video",
        "lazada_catalog_videos",
        "catalog_videos",
        "lazada_product_sync",
    } <= set(dagbag.dags)


def test_lazada_product_video_shape(dagbag):
    dag = dagbag.dags["lazada_product_video"]
    assert dag.schedule is None
    assert set(dag.params) >= {
        "video_path", "title", "cover_url", "item_id", "sku_id", "block_size", "chunks", "blocks_in_flight",
    }  # fmt: skip
    assert all(dag.params.get_param(name).description for name in dag.params)
    for name in ("block_size", "chunks", "blocks_in_flight"):  # 0 means "the default"
        assert dag.params[name] == 0, name
    group = "lazada_video."
    assert set(dag.task_ids) == {
        *(
            group + name
            for name in ("init_upload", "upload_chunk", "commit", "wait_for_audit", "record_audit")
        ),
        "attach_video",
    }
    chunks = dag.get_task(group + "upload_chunk")
    assert chunks.is_mapped and chunks.map_index_template == CHUNK_LABEL
    assert chunks.upstream_task_ids == {group + "init_upload"}
    commit = dag.get_task(group + "commit")
    assert commit.trigger_rule == "none_failed"  # no chunk task runs when Lazada already has the video
    assert commit.upstream_task_ids == {group + "init_upload", group + "upload_chunk"}
    assert dag.get_task(group + "wait_for_audit").deferrable is True
    assert dag.get_task(group + "wait_for_audit").upstream_task_ids == {group + "commit"}
    record = dag.get_task(group + "record_audit")
    assert record.trigger_rule == "one_failed"
    assert group + "wait_for_audit" in record.upstream_task_ids
    assert dag.get_task("attach_video").upstream_task_ids == {group + "wait_for_audit"}


def test_shopee_product_video_shape(dagbag):
    dag = dagbag.dags["shopee_product_video"]
    assert dag.schedule is None and set(dag.params) >= {"video_path", "item_id", "chunks", "parts_in_flight"}
    group = "shopee_video."
    assert set(dag.task_ids) == {
        *(
            group + name
            for name in ("init_upload", "upload_chunk", "complete", "wait_for_transcode", "clean_up")
        ),
        "attach_video",
    }
    chunks = dag.get_task(group + "upload_chunk")
    assert chunks.is_mapped and chunks.map_index_template == CHUNK_LABEL
    assert dag.get_task(group + "complete").trigger_rule == "none_failed"
    assert dag.get_task(group + "wait_for_transcode").deferrable is True
    assert dag.get_task(group + "clean_up").trigger_rule == "one_failed"
    assert dag.get_task("attach_video").upstream_task_ids == {group + "wait_for_transcode"}


def test_huawei_vod_upload_shape(dagbag):
    dag = dagbag.dags["huawei_vod_upload"]
    assert dag.schedule is None
    assert set(dag.params) >= {
        "video_path", "title", "description", "category_id", "auto_publish", "product", "part_size",
    }  # fmt: skip
    assert dag.params["part_size"] == 0  # 0: equal parts of at most 20 MB
    group = "huawei_vod."
    assert set(dag.task_ids) == {
        group + name
        for name in ("create_asset", "upload_chunk", "confirm_upload", "wait_until_ready", "cancel_upload")
    }
    chunks = dag.get_task(group + "upload_chunk")
    assert chunks.is_mapped and chunks.map_index_template == CHUNK_LABEL
    assert chunks.upstream_task_ids == {group + "create_asset"}
    confirm = dag.get_task(group + "confirm_upload")
    assert confirm.trigger_rule == "none_failed"  # a single PUT maps no chunk task
    assert confirm.upstream_task_ids == {group + "create_asset", group + "upload_chunk"}
    cancel = dag.get_task(group + "cancel_upload")
    assert cancel.trigger_rule == "one_failed"
    assert cancel.upstream_task_ids == {
        group + name for name in ("create_asset", "upload_chunk", "confirm_upload")
    }
    ready = dag.get_task(group + "wait_until_ready")
    assert ready.deferrable is True and ready.upstream_task_ids == {group + "confirm_upload"}


STEPS = (
    "plan",
    "upload_chunk",
    "settle",
    "wait_and_attach",
    "wait_and_attach_late",
    "report",
    "catalog_verdict",
    "next_batch",
)


def check_catalog_shape(dag, platforms: list[str]) -> None:
    group = "catalog."
    assert set(dag.task_ids) == {group + name for name in STEPS}
    assert [name for name in STEPS if dag.get_task(group + name).is_mapped] == ["upload_chunk"]
    assert dag.get_task(group + "upload_chunk").map_index_template == CHUNK_LABEL
    for name in ("settle", "wait_and_attach", "wait_and_attach_late", "report"):  # failures stay the video's
        assert dag.get_task(group + name).trigger_rule == "all_done", name
    late = dag.get_task(group + "wait_and_attach_late")  # beside the report: a slow review holds nothing back
    assert late.upstream_task_ids == {group + "wait_and_attach"} and not late.downstream_task_ids
    assert late.late_from == group + "wait_and_attach" and dag.get_task(group + "wait_and_attach").late_after
    assert late.outlets == dag.get_task(group + "wait_and_attach").outlets
    assert dag.get_task(group + "catalog_verdict").upstream_task_ids == {group + "report"}
    assert dag.get_task(group + "next_batch").upstream_task_ids == {group + "report"}
    for name in ("plan", "settle", "wait_and_attach", "wait_and_attach_late"):
        assert list(dag.get_task(group + name).connections) == platforms, name
    assert list(dag.get_task(group + "upload_chunk").partial_kwargs["connections"]) == platforms


def test_lazada_catalog_videos_shape(dagbag):
    dag = dagbag.dags["lazada_catalog_videos"]
    assert dag.schedule is None  # nothing runs until someone names a manifest
    assert set(dag.params) >= {"manifest", "block_size", "after_line", "fail_on_video_errors"}
    assert dag.params.get_param("manifest").has_value is False  # required: no default manifest to run
    check_catalog_shape(dag, ["lazada"])
    outlets = dag.get_task("catalog.wait_and_attach").outlets
    assert outlets == [product_videos_asset(), product_video_events()]
    assert [type(outlet) for outlet in outlets] == [Asset, AssetAlias]


def test_catalog_videos_serves_every_marketplace(dagbag):
    dag = dagbag.dags["catalog_videos"]
    assert dag.schedule is None and dag.params.get_param("manifest").has_value is False
    check_catalog_shape(dag, ["lazada", "shopee", "huawei_vod"])
    assert dag.get_task("catalog.wait_and_attach").outlets == [catalog_videos_asset()]


def test_lazada_product_sync_is_scheduled_on_the_catalogs_asset(dagbag):
    dag = dagbag.dags["lazada_product_sync"]
    assert [asset.uri for asset in dag.timetable.asset_condition.objects] == [product_videos_asset().uri]


def test_a_pool_covers_every_task_that_calls_the_platform():
    """``pool=`` shares an API budget across DAGs: every operator that calls the platform takes it; the
    waits (a deferred sensor frees its slot anyway) and the catalog's report tasks do not."""
    from airflow.sdk import DAG

    from media_upload.task_groups.huawei_vod import huawei_vod_upload
    from media_upload.task_groups.lazada import lazada_video_upload
    from media_upload.task_groups.lazada_catalog import lazada_catalog_upload

    with DAG("pooled", schedule=None) as dag:
        lazada_video_upload("/v.mp4", "t", "https://c", product="item:1", pool="media_upload")
        huawei_vod_upload("/v.mp4", "t", pool="media_upload")
        lazada_catalog_upload("/m.csv", pool="media_upload")
    pools = {task.task_id: task.pool for task in dag.tasks}
    waits = {task_id for task_id in pools if "wait_for" in task_id or "wait_until" in task_id}
    local = {"catalog.report", "catalog.catalog_verdict", "catalog.next_batch"}
    assert waits and all(pools[task_id] == "default_pool" for task_id in waits)
    assert all(pools[task_id] == "default_pool" for task_id in local)
    assert {pool for task_id, pool in pools.items() if task_id not in waits | local} == {"media_upload"}, (
        pools
    )
