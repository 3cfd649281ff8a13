# Two commands on a fresh machine: `make run` (set up, then the whole pipeline) and `make test`.
SHELL := /bin/bash
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export MPLBACKEND := Agg
# Another folder of images + LabelMe files to run the pipeline on, e.g. make run DATA=../shared/seed-webcam
DATA ?=
# The embedded sample's seed: other scenes than the seed-0 sample the bundled model was trained on, so
# that the default run fine-tunes and tests on pictures that model never saw (data.dvc pins the result).
SAMPLE_SEED := 1

# uv installs exactly what uv.lock pins (every distribution, with hashes); it is itself pinned here.
UV_VERSION := 0.13.9
UV := $(CURDIR)/.uv/bin/uv
export UV_PYTHON_DOWNLOADS := never

.PHONY: setup lock data run baseline check-clean compare test test-older-cpu test-slow lint docs docs-serve ui params team team-stop help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

setup: $(VENV)/.installed  ## .venv with exactly the locked environment (uv.lock, dev and peers extras) and facedet (editable)

$(UV):
	python3 -m venv .uv
	.uv/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# --locked: fails, instead of re-resolving, when pyproject.toml and uv.lock disagree (run make lock).
$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --extra dev --extra peers --python python3
	touch $@

lock: | $(UV)  ## after editing pyproject.toml's dependencies: resolve again and rewrite uv.lock (commit it)
	$(UV) lock --python python3

data: setup  ## data/: DATA copied in (links leading out of it left out, with the pictures of such label files), or the embedded sample when data/ is empty; pinned by data.dvc
ifneq ($(DATA),)
	rm -rf data && python -m facedet.datacopy "$(DATA)" data
else
	@if [ -z "$$(ls -A data 2>/dev/null)" ]; then facedet sample data --seed $(SAMPLE_SEED); fi
endif
	dvc add --quiet data

run: data  ## the whole pipeline (dvc repro): validate -> collect -> labels -> augment -> train -> evaluate -> export
	dvc repro
	@echo
	@echo "metrics:  results/evaluate/metrics.json  (dvc metrics show)"
	@echo "plots:    results/evaluate/*.png  (dvc plots show: PR curve, robustness, prediction grid)"
	@echo "runs:     make ui   (the MLflow UI; it prints the addresses of the runs with their headline metrics and of the registry)"
	@echo "baseline: make baseline   (records this run in git, so that experiments are compared with it: make compare)"

# `dvc exp show` with the headline metrics first (test AP@0.5, AP@[.5:.95], F1; validation AP and the
# model's threshold), then only the params that differ between the rows; deps hashes and the other
# metrics left out (plain `dvc exp show` has them all).
HEADLINE := ap50|ap50_95|f1|best/val_ap50|best/threshold
DEPS := data|conf|src/.*|results/.*|paths\..*
OTHER_METRICS := val/.*|train/.*|registry/.*|lr-.*|best/val_f1|ap50_(small|medium|large)|precision|recall|mean_iou|image_accuracy
# Params that only repeat another (optimizer.lr: $${train.lr}, trainer.max_epochs: $${train.max_epochs}, ...).
DERIVED = $(shell $(BIN)/python -c "from pathlib import Path; from facedet.config import derived_keys; print('|'.join(k.replace('.', '[.]') for k in sorted(derived_keys(Path('conf')))))")
NOT_SHOWN = $(DEPS)|$(OTHER_METRICS)|$(DERIVED)|fp_per_negative_image|tp|fp|fn|images|threshold
compare: setup  ## experiments side by side with the committed baseline: headline metrics, then the params that differ
	dvc exp show --only-changed --keep '^($(HEADLINE))$$' --drop '^($(NOT_SHOWN))$$'

MSG ?= Pipeline results (baseline)
baseline: setup  ## commit this run's results to git as the baseline of make compare (never a DVC-tracked output)
	python -m facedet.apps.baseline -m "$(MSG)"

test: setup  ## the fast tests
	pytest -q

test-older-cpu: setup  ## the fast tests with the CPU-dependent kernels of BLAS, OpenCV, NumPy, PyTorch and glibc limited to any x86-64's (tests/older_cpu.env)
	env $$(grep -v '^#' tests/older_cpu.env) pytest -q

check-clean:  ## no tracked file changed (what CI checks after make run in a fresh clone)
	@changed=$$(git status --porcelain --untracked-files=no); \
	if [ -n "$$changed" ]; then echo "tracked files changed:"; echo "$$changed"; git --no-pager diff --stat; exit 1; fi

lint: setup  ## ruff: lint and format check (configured in pyproject.toml); the documentation site builds strictly
	ruff check src tests experiments
	ruff format --check src tests experiments
	$(MAKE) --no-print-directory docs

# Not --quiet: it hides the warnings, and --strict then has none to count (a broken link would pass).
docs: setup  ## the documentation site (mkdocs.yml: docs/ and the docstrings) into site/, strict: a warning fails
	NO_MKDOCS_2_WARNING=1 mkdocs build --strict

docs-serve: setup  ## the documentation site on http://127.0.0.1:8000, rebuilt on every change
	NO_MKDOCS_2_WARNING=1 mkdocs serve --dev-addr 127.0.0.1:8000

test-slow: setup  ## the slow tests (whole default pipeline in a temporary copy)
	pytest -q -m slow

PORT ?= 5000
UI_STORE := sqlite:///$(CURDIR)/mlflow.db
# facedet.apps.ui saves the runs page's Results view (the headline metrics as columns) and prints the addresses.
ui: setup  ## the MLflow UI on 127.0.0.1:$(PORT) against this project's store (another port: make ui PORT=5001)
	@python -c 'import socket; socket.socket().bind(("127.0.0.1", $(PORT)))' 2>/dev/null || \
		{ echo "make ui: port $(PORT) on 127.0.0.1 is in use (another make ui?): make ui PORT=5001" >&2; exit 1; }
	@python -m facedet.apps.ui --store $(UI_STORE) --port $(PORT)
	mlflow ui --backend-store-uri $(UI_STORE) --host 127.0.0.1 --port $(PORT) --workers 1

params: setup  ## rewrite params.yaml from conf/ (what `dvc exp run` does)
	python -c "from dvc.utils.hydra import compose_and_dump; compose_and_dump('params.yaml', '$(CURDIR)/conf', None, 'config', '', [])"

team: setup  ## a team's servers on 127.0.0.1 (PostgreSQL, S3, MLflow on them) in .team/; prints a worker's environment (docs/scaling.md)
	facedet team up

team-stop: setup  ## stop make team's servers and delete what they stored
	facedet team down
