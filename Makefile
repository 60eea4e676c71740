# Two commands on a fresh machine: `make demo` and `make test`. Both build .venv from requirements.lock.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9

.PHONY: demo test lint sandbox-lazada sandbox-huawei-vod sandbox-shopee lock clean test-oldest-airflow test-browser test-faults reliability stack stack-demo airflow test-deployment test-security bench-push bench-vod-push bench-scale bench-view lineage-graph

$(BIN)/.installed: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps --editable .
	touch $@

demo: $(BIN)/.installed
	$(BIN)/python include/demo.py

test: $(BIN)/.installed
	$(BIN)/pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check plugins dags tests include bench
	$(BIN)/ruff format --check plugins dags tests include bench
	$(BIN)/mypy

sandbox-lazada: $(BIN)/.installed
	$(BIN)/media-sandbox lazada --port 8787

sandbox-huawei-vod: $(BIN)/.installed
	$(BIN)/media-sandbox huawei-vod --port 8788

sandbox-shopee: $(BIN)/.installed
	$(BIN)/media-sandbox shopee --port 8789

# The oldest Airflow the package declares (pyproject.toml), installed as PyPI was a few weeks after its
# release, with this project's wheel on top: the unit tests and the DAG import test must pass there too.
OLDEST_AIRFLOW := 3.2.0
OLDEST_AIRFLOW_PYPI_DATE := 2026-05-01
OLDEST := .venv-oldest-airflow
test-oldest-airflow: $(BIN)/.installed
	rm -rf $(OLDEST)
	$(BIN)/uv venv --quiet --python $(PYTHON) $(OLDEST)
	$(BIN)/uv build --wheel --quiet -o $(OLDEST)/dist .
	$(BIN)/uv pip install --quiet --python $(OLDEST)/bin/python --exclude-newer $(OLDEST_AIRFLOW_PYPI_DATE) \
		"apache-airflow==$(OLDEST_AIRFLOW)" apache-airflow-providers-http apache-airflow-providers-postgres \
		apache-airflow-providers-sqlite "apache-airflow-providers-amazon[s3fs]" "moto[s3]>=5" flask-cors \
		statsd pytest pytest-asyncio pytest-timeout
	$(BIN)/uv pip install --quiet --python $(OLDEST)/bin/python $(OLDEST)/dist/*.whl \
		"lazop-sdk==1.0.3" "huaweicloudsdkvod==3.1.219" "esdk-obs-python==3.26.6"
	cd /tmp && $(CURDIR)/$(OLDEST)/bin/python -c "import airflow, media_upload; \
		assert airflow.__version__ == '$(OLDEST_AIRFLOW)', airflow.__version__; \
		assert 'site-packages' in media_upload.__file__, media_upload.__file__; \
		print('Airflow', airflow.__version__, 'with', media_upload.__file__)"
	MEDIA_UPLOAD_TEST_PLUGINS_FOLDER=$(OLDEST)/no-plugins $(OLDEST)/bin/python -m pytest tests/unit tests/dags/test_dag_integrity.py

# Airflow as a team runs it, on this machine: api-server, scheduler, dag-processor, triggerer and two
# Celery workers on the local PostgreSQL and Redis, with the three emulators and sample products.
stack: $(BIN)/.installed
	$(BIN)/python include/stack.py up --executor CeleryExecutor --workers 2

# The same stack: trigger the four example DAGs through the REST API, wait, print, stop everything.
stack-demo: $(BIN)/.installed
	$(BIN)/python include/stack.py demo --executor CeleryExecutor --workers 2 --database airflow_stack_demo \
		--home .airflow-stack-demo

# The Airflow UI with the emulators, sample products, connections and a pool: LocalExecutor, no Redis.
airflow: $(BIN)/.installed
	$(BIN)/python include/stack.py up --executor LocalExecutor --home .airflow-ui --database airflow_ui

# Tests on a whole Airflow deployment (include/stack.py): Lazada's pushed video states end a catalog's
# audit wait with no GetVideo poll, VOD's notifications end its waits with at most one ShowAssetMeta per
# asset; with the receiver out of reach the same run finishes by polling; a StatsD listener on loopback
# receives the documented metrics from the task runner, the triggerer and the api-server.
test-deployment: $(BIN)/.installed
	MEDIA_UPLOAD_DEPLOYMENT_TESTS=1 $(BIN)/pytest -v tests/deployment

# Attacks on a real deployment (include/stack.py, push on): hostile run confs through the REST API,
# hostile manifests and strangers at the push receiver are refused, and a loopback "foreign host" gets
# no credential of any connection; local, s3:// and https:// sources named by a DAG still work.
test-security: $(BIN)/.installed
	MEDIA_UPLOAD_SECURITY_TESTS=1 $(BIN)/pytest -v tests/security

# Push against poll on a real deployment: audit-to-update delay, GetVideo calls, 1,000 waiting videos.
bench-push: $(BIN)/.installed
	$(BIN)/python bench/push.py --rounds 4 --out docs/benchmarks.md

# VOD's notifications against polling ShowAssetMeta on a real deployment: ready-to-verdict delay, calls per asset.
bench-vod-push: $(BIN)/.installed
	$(BIN)/python bench/vod_push.py --rounds 3 --out docs/benchmarks.md

# Catalogs of 100, 1,000 and 3,000 small videos and 100 large ones on CeleryExecutor with call limits on,
# beside a lazop-sdk script; the view's answers with 10,000 uploads in the ledger.
bench-scale: $(BIN)/.installed
	$(BIN)/python bench/scale.py --out docs/benchmarks.md

bench-view: $(BIN)/.installed
	$(BIN)/python bench/view.py --out docs/benchmarks.md

# A catalog of three rows through dag.test() against the emulators with the OpenLineage listener on (file
# transport); the graph its COMPLETE events name, drawn into docs/img/lineage-graph.png.
lineage-graph: $(BIN)/.installed
	$(BIN)/python bench/lineage_graph.py

# The fault campaign (50+ videos, 10 % of requests faulted) and the kill -9 tests, as assertions.
test-faults: $(BIN)/.installed
	$(BIN)/pytest -m faults tests/faults

# The same, run once to write their figures into docs/reliability.md.
reliability: $(BIN)/.installed
	$(BIN)/python -m tests.faults.campaign --crash-tests --out docs/reliability.md

# The "Media uploads" view in a real Airflow (include/stack.py: PostgreSQL, LocalExecutor, the three emulators)
# through headless Chromium driven by Playwright: Debian's chromium, installed here when missing (as root);
# saves docs/img/ui-run-tab.png and docs/img/ui-media-uploads.png.
test-browser: $(BIN)/.installed
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
		|| { echo "test-browser: Debian's chromium is missing and apt-get could not install it" >&2; exit 1; }
	@command -v chromium >/dev/null 2>&1 || { echo "test-browser: no chromium on PATH after apt-get install" >&2; exit 1; }
	MEDIA_UPLOAD_BROWSER_TESTS=1 $(BIN)/pytest -v tests/browser

# Re-resolve the pinned lock after editing pyproject.toml dependencies.
lock: $(BIN)/.installed
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 --quiet -o requirements.lock

clean:
	rm -rf $(VENV) $(OLDEST) .airflow-demo .airflow-stack .airflow-stack-demo .airflow-ui
