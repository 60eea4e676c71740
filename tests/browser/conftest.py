"""Browser tests start a whole Airflow deployment and Chromium: `make test-browser` runs them (it sets
MEDIA_UPLOAD_BROWSER_TESTS=1 after making sure Debian's chromium is installed); `make test` and a plain
`pytest` leave this folder out."""

from __future__ import annotations

import os

collect_ignore_glob = [] if os.environ.get("MEDIA_UPLOAD_BROWSER_TESTS") == "1" else ["*"]
