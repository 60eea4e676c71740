"""The "Media uploads" view of the Airflow UI: ledger queries (:mod:`.queries`), the FastAPI app the
api-server mounts (:mod:`.app`), and its one static page (``static/index.html``)."""
