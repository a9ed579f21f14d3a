# Two commands matter: `make run` and `make test`. Both create .venv and install what they need.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip

.PHONY: run test lint bench clean-venv paper model research

# The window; on a Linux machine with no display, the same paper trading headless (log lines).
run: $(VENV)/.runtime
	@if [ "$$(uname)" = Linux ] && [ -z "$$DISPLAY" ] && [ -z "$$WAYLAND_DISPLAY" ]; then \
		echo "No display found: running the paper bot headless (python -m bot paper). Ctrl-C stops it."; \
		$(PY) -m bot paper; \
	else $(PY) ui.py; fi

paper: $(VENV)/.runtime
	$(PY) -m bot paper

test: $(VENV)/.test
	$(PY) -m pytest self_test

# The trained agent the bot starts from (historical_data/models/dqn-default.pt): the design the
# research protocol chose on its validation spans (docs/research/research.json), trained on the
# shipped BTC hourly candles; one thread, seeded: the same file on any machine of the same kind.
model: $(VENV)/.runtime
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m bot research --make-model

# The research protocol that writes docs/research/ (the README's agent tables): the first run, then
# the position levels and trade filters merged in (--merge-into); ~45 min on 2 shared cores.
research: $(VENV)/.runtime
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m bot research --seeds 8 --folds 3 --out docs/research
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m bot research $(RESEARCH_LEVELS_FILTER)

RESEARCH_LEVELS_FILTER = --variants long_only,levels,levels_long,filter_sma,filter_analyst \
	--ensembles long_only,levels,levels_long,filter_sma,filter_analyst --seeds 8 --folds 3 \
	--out docs/research/levels_filter --merge-into docs/research/research.json

lint: $(VENV)/.test
	$(VENV)/bin/ruff check bot self_test bench config.py ui.py

bench: $(VENV)/.bench
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

$(VENV)/bin/python:
	@echo "first run: installing, a few minutes (Python and the packages go into $(VENV)) ..."
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

$(VENV)/.runtime: requirements.txt | $(VENV)/bin/python
	@echo "installing the packages in requirements.txt (first run or after an update: a few minutes) ..."
	$(PIP) install -r requirements.txt
	touch $@

$(VENV)/.test: requirements-test.txt requirements-ray.txt $(VENV)/.runtime
	$(PIP) install -r requirements-test.txt -r requirements-ray.txt
	touch $@

$(VENV)/.bench: requirements-bench.txt $(VENV)/.test
	$(PIP) install -r requirements-bench.txt
	touch $@

clean-venv:
	rm -rf $(VENV)
