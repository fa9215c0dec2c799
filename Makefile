# One-command entry points (see README). Each target creates and fills .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install reports test lint lab sample clean-reports system-deps handouts

$(STAMP): requirements-lock.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -r requirements-lock.txt
	@# pyfim (Borgelt's C FP-growth, the engine R arules runs) compiles from source: optional, needs a C compiler
	@if command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1; then \
	  $(BIN)/python -m pip install --quiet "pyfim==6.28" || echo "pyfim did not build: association uses the mlxtend engine"; \
	else echo "no C compiler: pyfim skipped, association uses the mlxtend engine"; fi
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name ecrm-research --display-name "Python (ecrm-research)" --env PYTHONHASHSEED 0
	@touch $(STAMP)

## install: create .venv with the pinned environment and register the 'ecrm-research' kernel
install: $(STAMP)

## system-deps: headless Chromium (report PDFs, browser test) and Java (Spark engine); Debian/Ubuntu, best effort when not root
system-deps:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || command -v google-chrome >/dev/null 2>&1; then \
	  echo "chromium: $$(command -v chromium || command -v chromium-browser || command -v google-chrome)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null && command -v apt-get >/dev/null 2>&1; then \
	  sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
	  echo "system-deps: cannot install chromium (not root / no apt-get): PDFs are skipped, browser tests skip locally and fail in CI"; \
	fi
	@# Java 17+ for the Spark engine (pyspark)
	@if command -v java >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null; \
	else echo "system-deps: no Java: the spark engine is unavailable"; fi

## reports: run every notebook on the bundled sample data into reports/ (opens with reports/index.html)
reports: install system-deps
	$(BIN)/ecrm run all --out reports

## test: the whole test suite (unit, real-data parity, notebooks end to end)
test: install system-deps
	$(BIN)/python -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

## lint: ruff (rules in pyproject.toml: pyflakes, pycodestyle, bugbear, isort, pyupgrade, mccabe)
lint: install
	$(BIN)/ruff check ecrm_research tests benchmarks

## lab: JupyterLab on notebooks/ with the project's kernel as the default for new notebooks (also as root)
LAB_ARGS ?=
lab: install
	$(BIN)/jupyter lab --notebook-dir=notebooks --MappingKernelManager.default_kernel_name=ecrm-research \
	  $$( [ "$$(id -u)" = 0 ] && echo --allow-root ) $(LAB_ARGS)

## handouts: student handouts and teacher keys of every notebook (see docs/teaching.md)
handouts: install
	$(BIN)/ecrm handout --out handouts

## sample: regenerate the bundled sample data bit for bit
sample: install
	$(BIN)/ecrm sample --out data/sample

clean-reports:
	rm -rf reports/* && touch reports/.gitkeep
