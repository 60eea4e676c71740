"""Attacks on a whole Airflow deployment (include/stack.py: PostgreSQL, LocalExecutor, api-server, scheduler,
dag-processor, triggerer as processes, push on): `make test-security` runs them (it sets
MEDIA_UPLOAD_SECURITY_TESTS=1); `make test` and a plain `pytest` leave this folder out."""

from __future__ import annotations

import os

collect_ignore_glob = [] if os.environ.get("MEDIA_UPLOAD_SECURITY_TESTS") == "1" else ["*"]
