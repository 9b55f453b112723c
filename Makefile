# fer-course: `make report` rebuilds the report (notebooks and figures), `make test` runs every check.
# Both create .venv and install into it the first time; both are safe to run again.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LAB_STAMP := $(VENV)/.lab-configured
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.ipynb))
SOLUTIONS := $(sort $(wildcard solutions/[0-9]*.ipynb))
NB_CLEAN := $(BIN)/nb-clean
NB_CLEAN_FLAGS := --preserve-cell-outputs

# OpenMP workers (torch's CPU threads) sleep rather than spin when idle: much faster on a busy machine.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: install git-filter data lab report solutions test lint final-model studies clean-notebooks readme

install: $(STAMP) $(LAB_STAMP)

$(STAMP): requirements.txt requirements-no-deps.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-no-deps.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m fer_utils fetch-weights
	$(BIN)/python -m fer_utils fetch-photos
	touch $(STAMP)

# A notebook opened and saved in JupyterLab, no cell changed, leaves `git status` clean: JupyterLab saves no widget
# state and the Jupyter server no Python version (lab-settings, in .venv), and git compares notebooks through nb-clean
# (git-filter). Redone when scripts/notebook_widgets.py changes, so an environment installed before gets it too.
$(LAB_STAMP): $(STAMP) scripts/notebook_widgets.py
	$(BIN)/python scripts/notebook_widgets.py lab-settings
	@$(MAKE) --no-print-directory git-filter
	touch $(LAB_STAMP)

# nb-clean as git's clean filter for notebooks ($(NB_CLEAN_FLAGS)): what `git status`, `git diff` and `git add` see
# of a notebook is what `make clean-notebooks` would leave. Repository-local (.git/config, .git/info/attributes),
# nothing committed; only in the project's own git checkout (nothing outside one, or in a repository above it). The
# filter runs from the top of the checkout: .venv/bin/nb-clean (nb-clean's own add-filter names a bare `nb-clean`,
# found only in an activated environment). `nb-clean remove-filter` undoes it.
git-filter:
	@if [ "$$(git rev-parse --show-toplevel 2>/dev/null)" = "$$(pwd -P)" ]; then \
		$(NB_CLEAN) add-filter $(NB_CLEAN_FLAGS) \
		&& git config filter.nb-clean.clean "$(NB_CLEAN) clean $(NB_CLEAN_FLAGS)" \
		&& echo "git: notebooks compared and committed through $$(git config filter.nb-clean.clean)" \
		|| echo "warning: could not set up nb-clean as git's filter for notebooks" >&2; \
	else echo "not the top of a git checkout: no nb-clean filter for git"; fi

# Finds the dataset ($$FER2013_PATH, data/fer2013.zip or data/fer2013/), downloading it if it can.
data: install
	@$(BIN)/python -c "import fer_utils as fu; print('dataset:', fu.find_dataset())" 2>/dev/null \
		|| $(BIN)/python -m fer_utils download

# Open the course in JupyterLab, from the project's environment, listening on 127.0.0.1 only; the dataset is found
# as `make report` finds it ($$FER2013_PATH, exported to the notebooks' kernels, or data/). Stop it with Ctrl-C.
LAB_PORT ?= 8888
lab: install data
	$(BIN)/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.port=$(LAB_PORT) --ServerApp.root_dir=$(CURDIR) \
		$(if $(filter 0,$(shell id -u)),--allow-root) notebooks/01_data_exploration.ipynb

# Time limits. No cell has one of its own: a correct cell that is slow on a slow or busy machine is not an
# error. Instead each notebook as a whole is stopped (SIGINT, then SIGKILL) after NOTEBOOK_TIMEOUT_S seconds in
# `make report` and SOLUTION_TIMEOUT_S in `make solutions`: that catches a hang, or a notebook training records
# that are missing (hours on a CPU: `make studies`; an interrupted run resumes). 0 means no limit. Without
# coreutils' `timeout` (macOS), notebooks run without a limit.
NOTEBOOK_TIMEOUT_S ?= 7200
SOLUTION_TIMEOUT_S ?= 21600
TIMEOUT := $(shell command -v timeout 2>/dev/null)
# `make test` (fast mode, minutes per notebook): pytest-timeout bounds each unit test (pyproject.toml: 900 s)
# and each notebook as a whole (FAST_NOTEBOOK_TIMEOUT_S, through conftest.py's --notebook-timeout); nbmake's
# per-cell limit is off. --durations lists the slowest tests and notebooks.
FAST_NOTEBOOK_TIMEOUT_S ?= 2400

# $(call execute_in_full_mode,NOTEBOOKS,TIMEOUT_S): run each notebook in place, in order, stopping at the first
# failure, with at most TIMEOUT_S seconds for each; prints each notebook's wall time.
execute_in_full_mode = @for nb in $(1); do \
		echo "== $$nb"; \
		start=$$(date +%s); \
		FER_FAST=0 $(if $(TIMEOUT),$(TIMEOUT) --signal=INT --kill-after=60 $(2)) $(BIN)/jupyter nbconvert --to notebook \
			--execute --inplace --ExecutePreprocessor.timeout=-1 "$$nb"; status=$$?; \
		if [ $$status -eq 124 ] || [ $$status -eq 137 ]; then \
			echo "$$nb: stopped after $(2) s (NOTEBOOK_TIMEOUT_S, SOLUTION_TIMEOUT_S: 0 for no limit)" >&2; fi; \
		[ $$status -eq 0 ] || exit 1; \
		echo "   $$nb: $$(( $$(date +%s) - start )) s"; \
	done

# The main job: execute every notebook in order (full mode), which regenerates figures/, then the README's results.
report: install data
	$(call execute_in_full_mode,$(NOTEBOOKS),$(NOTEBOOK_TIMEOUT_S))
	$(BIN)/python scripts/notebook_widgets.py strip $(NOTEBOOKS)
	$(NB_CLEAN) clean $(NB_CLEAN_FLAGS) $(NOTEBOOKS)
	$(BIN)/python scripts/render_readme.py

# The exercises' worked solutions, in full mode (their runs are stored records: training happens only once).
solutions: install data
	$(call execute_in_full_mode,$(SOLUTIONS),$(SOLUTION_TIMEOUT_S))
	$(BIN)/python scripts/notebook_widgets.py strip $(SOLUTIONS)
	$(NB_CLEAN) clean $(NB_CLEAN_FLAGS) $(SOLUTIONS)

readme: install
	$(BIN)/python scripts/render_readme.py

# Every check: unit tests, every notebook and solution executed in fast mode (FER_FAST=1), clean notebooks, lint.
test: install
	FER_FAST=1 $(BIN)/python -m pytest --nbmake --nbmake-timeout=-1 --notebook-timeout=$(FAST_NOTEBOOK_TIMEOUT_S) \
		--durations=20 tests notebooks solutions
	$(NB_CLEAN) check $(NB_CLEAN_FLAGS) $(NOTEBOOKS) $(SOLUTIONS)
	$(BIN)/python scripts/render_readme.py --check
	$(BIN)/ruff check fer_utils tests scripts

lint: install
	$(BIN)/ruff check fer_utils tests scripts

# Strip execution counts, volatile metadata, widget state and pandas' random table ids from the notebooks
# (outputs are kept: they are the report).
clean-notebooks: install
	$(BIN)/python scripts/notebook_widgets.py strip $(NOTEBOOKS) $(SOLUTIONS)
	$(NB_CLEAN) clean $(NB_CLEAN_FLAGS) $(NOTEBOOKS) $(SOLUTIONS)

# Refit the shipped model on all the training images: the recipe, epoch count and TTA chosen on validation
# by `scripts/run_study.py recipes` (records in results/). Prints the expected time first; resumes if interrupted.
final-model: install data
	$(BIN)/python scripts/run_study.py final --retrain

# Rerun the study grids of notebooks 02 and 03 and the final-model candidates (hours on a CPU).
studies: install data
	$(BIN)/python scripts/run_study.py ablation
	$(BIN)/python scripts/run_study.py architectures
	$(BIN)/python scripts/run_study.py recipes
