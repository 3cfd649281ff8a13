# Two commands on a fresh machine: `make run` (set up, then the whole pipeline) and `make test`.
SHELL := /bin/bash
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export NO_ALBUMENTATIONS_UPDATE := 1
export MPLBACKEND := Agg
# Another folder of images + LabelMe files to run the pipeline on, e.g. make run DATA=../shared/seed-webcam
DATA ?=

.PHONY: setup data run test test-slow ui params help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

setup: $(VENV)/.installed  ## virtualenv with the pinned dependencies and facedet (editable)

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

data: setup  ## data/: DATA copied in (links leading out of it left out), or the embedded sample when data/ is empty; pinned by data.dvc
ifneq ($(DATA),)
	rm -rf data && python -m facedet.datacopy "$(DATA)" data
else
	@if [ -z "$$(ls -A data 2>/dev/null)" ]; then facedet sample data; fi
endif
	dvc add --quiet data

run: data  ## the whole pipeline (dvc repro): collect -> labels -> augment -> train -> evaluate
	dvc repro
	@echo
	@echo "metrics:  results/evaluate/metrics.json  (dvc metrics show)"
	@echo "plots:    results/evaluate/pr_curve.png, results/evaluate/predictions.png  (dvc plots show)"
	@echo "runs:     mlflow ui --backend-store-uri sqlite:///mlflow.db   (or: make ui)"

test: setup  ## the fast tests
	pytest -q

test-slow: setup  ## the slow tests (whole default pipeline in a temporary copy)
	pytest -q -m slow

ui: setup  ## the MLflow UI on 127.0.0.1:5000 against this project's store
	mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db --host 127.0.0.1 --port 5000 --workers 1

params: setup  ## rewrite params.yaml from conf/ (what `dvc exp run` does)
	python -c "from dvc.utils.hydra import compose_and_dump; compose_and_dump('params.yaml', '$(CURDIR)/conf', None, 'config', '', [])"
