# cam-widget: every target creates the virtualenv it needs (tensorflow-cpu, JupyterLab, test tools).
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: venv browser-deps test test-fast demo lab bench lint clean

venv: $(STAMP)

$(STAMP): requirements-dev.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Debian's chromium for the browser tests (Playwright cannot download its own browser here).
browser-deps:
	bash scripts/install_browser_deps.sh

# The whole suite: unit, model, notebook and browser tests.
test: venv browser-deps
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# Everything except the browser and notebook tests.
test-fast: venv
	$(VENV)/bin/pytest -m "not browser and not notebook" $(PYTEST_ARGS)

# Headless demo: CAM overlays of the embedded model on the sample photos -> artifacts/demo/
demo: venv
	$(VENV)/bin/cam-widget demo --out artifacts/demo

# The main job: JupyterLab on the tour notebook (prints the tour's URL; opens it where a browser exists).
lab: venv
	$(VENV)/bin/python -m cam_widget.warmup
	VENV=$(VENV) bash scripts/lab.sh

# Speed and memory benchmarks -> BENCHMARKS.md (+ bench/*.png)
bench: venv browser-deps
	$(VENV)/bin/python -m bench.run_all

lint: venv
	$(VENV)/bin/ruff check cam_widget tests bench

clean:
	rm -rf $(VENV) artifacts .pytest_cache
