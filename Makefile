# Two entry points from a fresh clone: `make demo` and `make test`. Everything else is set-up.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup jars demo test lint typecheck unit clean bench chromium

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,spark,postgres,delta,checks,s3,airflow,ui]'
	# AWS SDK v2 jars for Iceberg's S3FileIO in Spark (its own deps would clash: --no-deps)
	$(PY) -m pip install -q --no-deps 'bodo-iceberg-connector==2026.10'
	touch $(STAMP)

# The JVM shim, from jars/shim/src into ~/.cache/spark-lakeversion/shim
# (or $$XDG_CACHE_HOME): rebuilt only when the sources change (the builder hashes them).
jars: setup
	$(PY) -m spark_lakeversion.spark.build

demo: setup jars
	$(PY) examples/quickstart.py

lint: setup
	$(VENV)/bin/ruff check spark_lakeversion tests examples
	$(VENV)/bin/mypy

# the web UI's browser tests drive Debian's Chromium (Playwright never downloads a browser)
chromium:
	test -x /usr/bin/chromium || (apt-get update -q && apt-get install -y -q chromium)

test: setup jars lint chromium
	$(PY) -m pytest

bench: setup jars
	$(VENV)/bin/lakeversion bench store --json

clean:
	rm -rf $(VENV) lakehouse .pytest_cache .mypy_cache .ruff_cache
	rm -rf "$${XDG_CACHE_HOME:-$$HOME/.cache}/spark-lakeversion/shim"
