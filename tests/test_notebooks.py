"""The notebooks' conventions (CONTRIBUTING.md), and the fast mode that CI runs them in."""

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_the_kernel_sees_fast_mode(monkeypatch):
    monkeypatch.setenv("FER_FAST", "1")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import fer_utils as fu\nprint(fu.fast_mode())")])
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    assert nb.cells[0].outputs[0]["text"].strip() == "True"


def test_there_are_notebooks():
    assert [p.name[:2] for p in NOTEBOOKS] == [f"{i:02d}" for i in range(1, len(NOTEBOOKS) + 1)]
    assert len(NOTEBOOKS) >= 4


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_follows_the_conventions(path):
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith(f"# {path.name[:2]} · ")
    assert "**Purpose:**" in first.source
    setup = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and c.source.startswith("## Setup"))
    assert "import fer_utils as fu" in nb.cells[setup + 1].source and "set_seed" in nb.cells[setup + 1].source
    headings = [c.source.splitlines()[0] for c in nb.cells if c.cell_type == "markdown"]
    assert headings[-1] in ("## Summary", "## Exercises")
    assert "## Summary" in headings and headings[headings.index("## Summary") + 1 :] in ([], ["## Exercises"])
    # committed executed, without execution counts: the report is in the outputs
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is None for c in code)
    assert sum(bool(c.outputs) for c in code) >= len(code) // 2


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_chapter_reads_in_one_sitting(path):
    """No code cell over 35 lines, and at most about 1,600 words of prose (inline code counted as one word)."""
    nb = nbformat.read(path, as_version=4)
    longest = max(len(c.source.splitlines()) for c in nb.cells if c.cell_type == "code")
    words = sum(len(re.sub(r"`[^`]*`", "code", c.source).split()) for c in nb.cells if c.cell_type == "markdown")
    assert longest <= 35 and words <= 1600, f"{path.name}: a code cell of {longest} lines, {words} words of prose"


SOLUTIONS = Path(__file__).parents[1] / "solutions"


def exercise_count(nb) -> int:
    """How many numbered exercises a notebook's Exercises section sets."""
    cell = next(c for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("## Exercises"))
    return len(re.findall(r"^\d+\. \*\*", cell.source, flags=re.M))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_exercise_has_a_worked_solution(path):
    """solutions/NN_topic_solutions.ipynb answers each of NN_topic's exercises under '## Exercise k', executed."""
    notebook = nbformat.read(path, as_version=4)
    n = exercise_count(notebook)
    assert 2 <= n <= 3, f"{path.name} sets {n} exercises"
    solution = SOLUTIONS / f"{path.stem}_solutions.ipynb"
    assert solution.exists(), f"no worked solutions for {path.name}: write {solution.name}"
    assert f"(../solutions/{solution.name})" in notebook.cells[-1].source  # the Exercises link to their solutions
    nb = nbformat.read(solution, as_version=4)
    assert nb.cells[0].source.startswith(f"# {path.name[:2]} · Solutions") and "**Purpose:**" in nb.cells[0].source
    assert f"../notebooks/{path.name}" in nb.cells[0].source  # a link back to the exercises
    setup = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and c.source.startswith("## Setup"))
    assert "import fer_utils as fu" in nb.cells[setup + 1].source and "set_seed" in nb.cells[setup + 1].source
    headings = [c.source.splitlines()[0].split(":")[0] for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("## ")]
    assert headings == ["## Setup"] + [f"## Exercise {k}" for k in range(1, n + 1)]
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is None for c in code) and all(c.outputs for c in code)


def test_no_solution_without_its_notebook():
    stems = {p.stem for p in NOTEBOOKS}
    assert sorted(p.stem.removesuffix("_solutions") for p in SOLUTIONS.glob("*.ipynb")) == sorted(stems)
