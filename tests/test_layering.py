"""The package's modules import each other in one direction: no cycles, and the models need no data module."""

import ast

import networkx as nx

import fer_utils as fu

PACKAGE = fu.PROJECT_ROOT / "fer_utils"


def import_graph() -> nx.DiGraph:
    """module -> the package modules it imports, at the top or inside a function."""
    graph = nx.DiGraph()
    for path in PACKAGE.glob("*.py"):
        name = path.stem
        graph.add_node(name)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                targets = [node.module] if node.module else [a.name for a in node.names]
                graph.add_edges_from((name, t.split(".")[0]) for t in targets if t.split(".")[0] != name)
    graph.remove_node("__init__")  # the namespace imports everything; no module imports it
    return graph


def test_no_module_imports_itself_through_others():
    cycles = list(nx.simple_cycles(import_graph()))
    assert not cycles, f"import cycles among fer_utils modules: {cycles}"


def test_models_and_inputs_need_no_data_module():
    graph = import_graph()
    assert "data" not in nx.descendants(graph, "models")
    assert "data" not in nx.descendants(graph, "inputs")
