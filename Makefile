# fer-course: `make report` rebuilds the report (notebooks and figures), `make test` runs every check.
# Both create .venv and install into it the first time; both are safe to run again.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.ipynb))
SOLUTIONS := $(sort $(wildcard solutions/[0-9]*.ipynb))
NB_CLEAN := $(BIN)/nb-clean
NB_CLEAN_FLAGS := --preserve-cell-outputs

.PHONY: install data report solutions test lint final-model studies clean-notebooks readme

install: $(STAMP)

$(STAMP): requirements.txt requirements-no-deps.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-no-deps.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m fer_utils fetch-weights
	$(BIN)/python -m fer_utils fetch-photos
	$(BIN)/python scripts/notebook_widgets.py lab-settings
	touch $(STAMP)

# Finds the dataset ($$FER2013_PATH, data/fer2013.zip or data/fer2013/), downloading it if it can.
data: install
	@$(BIN)/python -c "import fer_utils as fu; print('dataset:', fu.find_dataset())" 2>/dev/null \
		|| $(BIN)/python -m fer_utils download

# $(call execute_in_full_mode,NOTEBOOKS,TIMEOUT_S): run each notebook in place, in order, stopping at the first failure.
execute_in_full_mode = @for nb in $(1); do \
		echo "== $$nb"; \
		FER_FAST=0 $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
			--ExecutePreprocessor.timeout=$(2) "$$nb" || exit 1; \
	done

# The main job: execute every notebook in order (full mode), which regenerates figures/, then the README's results.
report: install data
	$(call execute_in_full_mode,$(NOTEBOOKS),900)
	$(BIN)/python scripts/notebook_widgets.py strip $(NOTEBOOKS)
	$(NB_CLEAN) clean $(NB_CLEAN_FLAGS) $(NOTEBOOKS)
	$(BIN)/python scripts/render_readme.py

# The exercises' worked solutions, in full mode (their runs are stored records: training happens only once).
solutions: install data
	$(call execute_in_full_mode,$(SOLUTIONS),3600)
	$(NB_CLEAN) clean $(NB_CLEAN_FLAGS) $(SOLUTIONS)

readme: install
	$(BIN)/python scripts/render_readme.py

# Every check: unit tests, every notebook and solution executed in fast mode (FER_FAST=1), clean notebooks, lint.
test: install
	FER_FAST=1 $(BIN)/python -m pytest --nbmake --nbmake-timeout=1200 tests notebooks solutions
	$(NB_CLEAN) check $(NB_CLEAN_FLAGS) $(NOTEBOOKS) $(SOLUTIONS)
	$(BIN)/python scripts/render_readme.py --check
	$(BIN)/ruff check fer_utils tests scripts

lint: install
	$(BIN)/ruff check fer_utils tests scripts

# Strip execution counts and volatile metadata from the notebooks (outputs are kept: they are the report).
clean-notebooks: install
	$(BIN)/python scripts/notebook_widgets.py strip $(NOTEBOOKS)
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
