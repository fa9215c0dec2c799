# One-command entry points (see README). Each target creates and fills .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install reports test lab sample clean-reports

$(STAMP): requirements-lock.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -r requirements-lock.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name ecrm-research --display-name "Python (ecrm-research)"
	@touch $(STAMP)

## install: create .venv with the pinned environment and register the 'ecrm-research' kernel
install: $(STAMP)

## reports: run every notebook on the bundled sample data into reports/ (opens with reports/index.html)
reports: install
	$(BIN)/ecrm run all --out reports

## test: the whole test suite (unit, real-data parity, notebooks end to end)
test: install
	$(BIN)/python -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

## lab: JupyterLab on notebooks/ with the project's kernel
lab: install
	$(BIN)/jupyter lab --notebook-dir=notebooks

## sample: regenerate the bundled sample data bit for bit
sample: install
	$(BIN)/ecrm sample --out data/sample

clean-reports:
	rm -rf reports/* && touch reports/.gitkeep
