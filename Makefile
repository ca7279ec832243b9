# One command per chore. Every target installs what it needs into .venv first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install run demo test lint bench bench-load bench-upload gpu-check clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# every DYNGEN_ setting applies, e.g. DYNGEN_PORT=8001 make run (README, Settings)
run: install
	$(VENV)/bin/dyngen serve

demo: install
	$(VENV)/bin/dyngen demo --out demo-out

# two workers: most tests wait on the real API, worker, database and browser processes they
# start, so two at once took the suite from 867 s to 534 s on the 2-core machine (each test
# has its own schema, queue, ports and redis-server where it cuts one); PYTEST_ARGS="-n 0"
# runs it in one process
test: install
	$(PY) -m pytest -q -n 2 $(PYTEST_ARGS)

# ruff, mypy (strict on model/ and core/) and the import contracts of pyproject.toml
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache --no-logo

bench: install
	$(PY) -m benchmarks.run
	$(PY) -m benchmarks.workers

# on a CUDA machine, under 10 minutes; without one it says "no CUDA device" and exits 0
gpu-check: install
	$(PY) -m benchmarks.gpu_check $(GPU_CHECK_ARGS)

# needs PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379 (bash .ci/services.sh)
bench-load: install
	$(PY) -m benchmarks.load $(BENCH_ARGS)

# the API's peak memory while a 1 GiB upload streams to an object store (moto's S3 server)
bench-upload: install
	$(PY) -m benchmarks.upload_memory $(BENCH_ARGS)

clean:
	rm -rf $(VENV) demo-out .pytest_cache .mypy_cache .ruff_cache
