"""The package's layers, enforced: every import of one socratic module by another (at the top, inside a
function, or for type checking only) goes down the layer order below or stays inside its own package,
and the whole graph has no cycle. docs/ARCHITECTURE.md draws the same order."""

import ast
from pathlib import Path

import socratic

PACKAGE = Path(socratic.__file__).parent

# Lowest first. A module may import from its own package and from any package on an earlier line;
# packages on the same line are siblings and never import one another.
LAYERS = [
    ["core"],
    ["text"],
    ["tasks"],
    ["weights"],
    ["llamacpp"],
    ["engines"],
    ["teacher", "training", "solving"],
    ["scoring"],
    ["commands"],
    ["testing"],
    ["cli"],
    ["__main__", ""],  # "" is socratic/__init__.py
]
RANK = {package: rank for rank, packages in enumerate(LAYERS) for package in packages}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imported(path: Path, known: dict[str, Path]) -> set[str]:
    """The socratic modules a file imports anywhere in it."""
    found = set()
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            # `from socratic import formats` imports the module socratic.text.formats; `from x import name` imports x
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in known)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imported(path, known) - {name} for name, path in known.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def package_of(module: str) -> str:
    """`socratic.core.jsonl` -> "core"; `socratic.cli` -> "cli"; `socratic` -> ""."""
    return module.split(".")[1] if "." in module else ""


def against_the_layers(edges: dict[str, set[str]]) -> list[str]:
    """Every import that goes up the layer order or sideways to a sibling package, as `a -> b`."""
    wrong = []
    for source, targets in sorted(edges.items()):
        here = package_of(source)
        for target in sorted(targets):
            there = package_of(target)
            if there != here and RANK[there] >= RANK[here]:
                wrong.append(f"{source} -> {target}")
    return wrong


def test_every_module_lives_in_a_layer_package():
    flat = sorted(m for m in modules() if m.count(".") == 1 and package_of(m) not in RANK)
    assert not flat, f"modules outside every layer package (add them to one, or a layer to LAYERS): {flat}"
    assert {package_of(m) for m in modules()} <= set(RANK), "a package that is in no layer"


def test_every_layer_package_says_what_it_owns():
    for package in RANK:
        init = PACKAGE / package / "__init__.py"
        if init.exists():
            doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
            assert doc and len(doc.split()) >= 8, f"{init}: the docstring says what the layer owns"


def test_imports_run_down_the_layers():
    wrong = against_the_layers(graph())
    assert not wrong, "imports against the layer order:\n" + "\n".join(wrong)


def test_the_layer_check_sees_an_upward_and_a_sideways_import():
    edges = {
        "socratic.core.jsonl": {"socratic.text.formats"},  # up
        "socratic.training.train": {"socratic.solving.loops", "socratic.core.jsonl"},  # sideways, down
        "socratic.commands.solve": {"socratic.commands.pipeline"},  # inside its package
    }
    assert against_the_layers(edges) == [
        "socratic.core.jsonl -> socratic.text.formats",
        "socratic.training.train -> socratic.solving.loops",
    ]


def test_no_import_cycles():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_sees_imports_inside_functions_and_type_checking_blocks():
    edges = graph()
    assert "socratic.text.formats" in edges["socratic.training.data"]
    assert "socratic.weights.student_folder" in edges["socratic.solving.students"]
    assert len(edges) > 30
