# ovedge: the two commands that matter are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_IR := ir_models/demo/.converted-stamp
DEMO_CKPT := models/demo/defectnet.pt

.PHONY: install demo demo-model test lint typecheck bench bench-quick bench-stages bench-convert bench-http clean

# The venv: the project with the converter extra (torch CPU build pinned by constraints.txt) and the
# camera SDK extras, whose tests run against pylon's emulated cameras and the simulated GenTL producer.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { echo "cannot create $(VENV): on Debian, apt-get install -y python3-venv"; exit 1; }
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[convert,dev,bench,genicam,basler]"
	touch $@

install: $(STAMP)

# The demo IR is made from the committed checkpoint. Versions are immutable: a newer checkpoint
# becomes the next version (the daemon runs "latest"), never an overwrite.
# The recipe (input size, mean, std, labels, OK label) is written once, in convert/demo_recipe.py.
$(DEMO_IR): $(DEMO_CKPT) models/demo/labels.txt convert/demo_recipe.py | $(STAMP)
	$(BIN)/ovedge-convert $(DEMO_CKPT) $$($(BIN)/python -m convert.demo_recipe) --out ir_models
	touch $@

demo: $(STAMP) $(DEMO_IR)
	$(BIN)/python tools/demo.py --config config.toml $(DEMO_ARGS)

# Retrain the demo model (writes models/demo/; minutes on 2 idle cores). Not needed for `make demo`.
demo-model: $(STAMP)
	$(BIN)/python tools/train_demo_model.py --out models/demo

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

# PYTHONUTF8: the tests read tools' output (systemd-analyze's arrows, pip's) as text; UTF-8 mode keeps
# that independent of whatever locale the machine, or a library the tests load, has set.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	PYTHONUTF8=1 $(BIN)/pytest $(PYTEST_ARGS)

bench: $(STAMP) $(DEMO_IR)
	$(BIN)/python benchmarks/run.py

bench-quick: $(STAMP)
	$(BIN)/python benchmarks/run.py --quick --out .bench

bench-stages: $(STAMP) $(DEMO_IR)
	$(BIN)/python benchmarks/stages.py ir_models demo 1

bench-convert: $(STAMP)
	$(BIN)/python benchmarks/convert_bench.py

# POST /infer vs the seed's Flask + gunicorn /run (needs Debian apache2-utils for ab); ~10 min.
bench-http: $(STAMP)
	$(BIN)/python benchmarks/http_bench.py $(BENCH_ARGS)

clean:
	rm -rf .demo .bench .pytest_cache .mypy_cache .ruff_cache
