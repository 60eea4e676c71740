"""DAGs a DAG author writes for remote sources: the connection that reads them is named here, in the DAG
file, never by whoever triggers a run (the security tests trigger them with hostile confs)."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param, task

from media_upload.task_groups.lazada import lazada_video_upload

for dag_id, source_conn_id in (("security_s3_video", "media_s3"), ("security_cdn_video", "media_cdn")):
    with DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        default_args={"retries": 0},
        params={
            "video_path": Param(type="string", minLength=1),
            "cover_url": Param(type="string", minLength=1),
            "product": Param(type="string", minLength=1),
        },
    ) as dag:

        @task
        def video_ready(video_id: str) -> str:
            """What a DAG does next with the audited video (a product update, a report)."""
            return video_id

        video = lazada_video_upload(
            source="{{ params.video_path }}",
            title="Security test video",
            cover_url="{{ params.cover_url }}",
            product="{{ params.product }}",
            source_conn_id=source_conn_id,
        )
        video_ready(video)
    globals()[dag_id] = dag
