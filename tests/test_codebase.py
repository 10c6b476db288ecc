"""The shape of the code itself: no import cycles between the project's modules, no giant functions.

Both are read from the source with `ast` (every import counts, also those inside functions or under
TYPE_CHECKING: a cycle hidden in a function is still a cycle a reader has to untangle).
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

from conftest import ROOT

PACKAGES = ("train", "model_card", "bench", "space")
MAX_FUNCTION_LINES = 80


def project_files() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """The project modules a file imports (space/ imports its siblings by their bare names)."""
    found = set()
    package = module_name(path).split(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        for name in names:
            for candidate in (name, f"{package}.{name}"):
                if candidate in known:
                    found.add(candidate)
    return found - {module_name(path)}


def import_graph() -> dict[str, set[str]]:
    files = project_files()
    known = {module_name(p) for p in files}
    return {module_name(p): imported_modules(p, known) for p in files}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node], _ = 1, path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node], _ = 2, path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles() -> None:
    graph = import_graph()
    assert graph["train.run"], "the import graph was not read"
    assert find_cycle(graph) is None


def test_no_function_over_the_limit() -> None:
    long = []
    for path in project_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    assert long == []


def test_space_imports_nothing_of_the_rest() -> None:
    """space/ is uploaded alone as a Space repo."""
    for path in (ROOT / "space").rglob("*.py"):
        tops = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                tops |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                tops.add(node.module.split(".")[0])
        assert not tops & {"train", "model_card", "bench", "tests"}, path


def space_definition(name: str) -> tuple[Path, ast.AST]:
    """Where in space/ `name` is defined (a module-level assignment or function), wherever the modules are split."""
    found = []
    for path in sorted((ROOT / "space").glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            targets = [t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)]
            if name in targets or getattr(node, "name", None) == name:
                found.append((path, node))
    assert len(found) == 1, f"{name} is defined {len(found)} times in space/: {[str(p) for p, _ in found]}"
    return found[0]


def space_value(name: str) -> object:
    """The object itself, from the space module that defines it (space/ is on sys.path: space_fixtures.py)."""
    path, _ = space_definition(name)
    return getattr(importlib.import_module(path.stem), name)


def _body_without_docstring(function: ast.FunctionDef) -> str:
    body = function.body[1:] if ast.get_docstring(function) else function.body
    return "\n".join(ast.dump(node) for node in body)


def test_copies_across_the_space_wall_agree() -> None:
    """The Space is deployed alone, so it copies three things of train/ instead of importing them."""
    from train.config import ModelArguments
    from train.data import BR_TAG
    from train.training_args import cpu_has_native_bf16

    # Reviews are cleaned as in training: the same pattern, and the same result on IMDb's variants.
    space_br = space_value("BR_TAG")
    assert (space_br.pattern, space_br.flags) == (BR_TAG.pattern, BR_TAG.flags)
    sample = "One<br />two<br/>three<BR>four<br   />five<bra>"
    assert space_br.sub(" ", sample) == BR_TAG.sub(" ", sample)
    # Long reviews are windowed as the test split was: neighbours share --window_stride's default.
    assert space_value("WINDOW_OVERLAP") == ModelArguments.window_stride
    # The bf16 engine is offered exactly where training picks bf16: the same check, statement for statement.
    _, space_check = space_definition("cpu_has_native_bf16")
    train_check = next(
        node
        for node in ast.parse(inspect.getsource(inspect.getmodule(cpu_has_native_bf16))).body
        if getattr(node, "name", None) == "cpu_has_native_bf16"
    )
    assert _body_without_docstring(space_check) == _body_without_docstring(train_check)
    assert space_value("cpu_has_native_bf16")() == cpu_has_native_bf16()
