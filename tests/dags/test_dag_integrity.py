"""Every DAG imports cleanly, and lazada_product_video is wired as documented."""

from __future__ import annotations


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert "lazada_product_video" in dagbag.dags


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
    assert blocks.map_index_template == "block {{ task.block_no + 1 }}/{{ task.block_count }}"
    assert dag.get_task("lazada_video.wait_for_audit").deferrable is True
    assert dag.get_task("lazada_video.commit").retries == 0
    assert dag.get_task("attach_video").upstream_task_ids == {"lazada_video.wait_for_audit"}
    assert dag.get_task("lazada_video.commit").upstream_task_ids == {
        "lazada_video.init_upload",
        "lazada_video.upload_block",
    }
