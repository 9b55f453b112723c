"""The package's modules import each other in one direction: no cycles, the models need no data module,
and the library (``fer_utils``) never imports the course's study and report layer (``fer_utils.course``)."""

import ast
import subprocess
import sys

import networkx as nx

import fer_utils as fu

PACKAGE = fu.PROJECT_ROOT / "fer_utils"


def module_name(path) -> str:
    """'train', 'course.ablation': a module's name inside the package."""
    return ".".join(path.relative_to(PACKAGE).with_suffix("").parts)


def imported(path) -> set[str]:
    """The package modules that the module at ``path`` imports, at the top or inside a function."""
    here = module_name(path).split(".")[:-1]  # the module's own package, below fer_utils
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = here[: len(here) - (node.level - 1)] if node.level > 1 else here
            if node.module:
                found.add(".".join([*base, node.module]))
            else:
                found.update(".".join([*base, alias.name]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fer_utils."):
            found.add(node.module.removeprefix("fer_utils."))
        elif isinstance(node, ast.Import):
            found.update(a.name.removeprefix("fer_utils.") for a in node.names if a.name.startswith("fer_utils."))
    return found


def import_graph() -> nx.DiGraph:
    """module -> the package modules it imports (a package's name stands for its __init__)."""
    graph = nx.DiGraph()
    for path in PACKAGE.rglob("*.py"):
        name = module_name(path).removesuffix(".__init__")
        graph.add_node(name)
        graph.add_edges_from((name, target) for target in imported(path) if target != name)
    return graph


def test_no_module_imports_itself_through_others():
    graph = import_graph()
    graph.remove_nodes_from(["__init__", "course"])  # the namespaces import lazily; no module imports them
    cycles = list(nx.simple_cycles(graph))
    assert not cycles, f"import cycles among fer_utils modules: {cycles}"


def test_models_and_inputs_need_no_data_module():
    graph = import_graph()
    assert "data" not in nx.descendants(graph, "models")
    assert "data" not in nx.descendants(graph, "inputs")


def test_the_library_never_imports_the_course():
    graph = import_graph()
    library = [m for m in graph if m != "course" and not m.startswith("course.")]
    leaks = {m: sorted(t for t in graph.successors(m) if t == "course" or t.startswith("course."))
             for m in library if m != "__init__"}
    assert not any(leaks.values()), f"library modules importing fer_utils.course: { {m: t for m, t in leaks.items() if t} }"
    code = "import sys, fer_utils.predict, fer_utils.cli; print([m for m in sys.modules if '.course' in m])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_command_line_answers_help_without_importing_torch():
    verbs = ["", "train", "evaluate", "predict", "video", "webcam", "export", "bench-inference", "bench"]
    code = ("import contextlib, io, sys\nfrom fer_utils import cli\nfor verb in sys.argv[1:]:\n"
            "    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
            "        cli.main([*verb.split(), '--help'])\n"
            "print(sorted({'torch', 'numpy', 'cv2', 'pandas'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code, *verbs], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"--help imported {out.strip()}: the parser needs fer_utils.config alone"
