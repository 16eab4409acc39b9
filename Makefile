# Two commands set up everything on a fresh machine (Python 3.11, Java 17, Maven):
#   make demo   — the embedded demo: local Kafka broker, chDB, simulator, worker, sink
#   make test   — the whole test suite (real Kafka broker, real chDB)
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint venv clean dashboards bench bench-scaling

$(BIN)/ioc: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements.lock -e '.[dev]'
	touch $(BIN)/ioc

venv: $(BIN)/ioc

demo: venv
	$(BIN)/ioc demo $(DEMO_ARGS)

# Two test processes (--dist loadfile: a file's tests stay together): most tests wait on Kafka,
# subprocesses and timers, so two run side by side on two cores. Tests marked `serial` (they
# measure rates or wait on timeouts) run afterwards on their own. PYTEST_PARALLEL= runs
# everything in one process. Exit status 5 = the selection left nothing for that phase.
PYTEST_PARALLEL ?= -n 2 --dist loadfile

test: lint
	$(BIN)/python -m pytest $(PYTEST_PARALLEL) -m "not serial" $(PYTEST_ARGS) || test $$? -eq 5
	$(BIN)/python -m pytest -m serial $(PYTEST_ARGS) || test $$? -eq 5

# Part of `make test`: lint, types, and the committed dashboards must match the code.
lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy streams schemas connectors dashboards infra
	$(BIN)/ioc dashboards build --check
	$(BIN)/ioc schemas docs --check
	$(BIN)/ioc schemas check

dashboards: venv
	$(BIN)/ioc dashboards build

# Benchmarks (bench/README.md): end to end on a mix of every subsystem (--mix traffic for the
# traffic-only run), and 1 vs 2 worker processes in one group.
bench: venv
	$(BIN)/python bench/e2e_throughput.py $(BENCH_ARGS)

bench-scaling: venv
	$(BIN)/python bench/scaling.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var
