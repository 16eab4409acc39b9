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

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

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
