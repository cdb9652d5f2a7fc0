"""The layering docs/architecture.md promises, checked on the source: no import cycles between the
project's modules, no module reaching into another module's private attributes, arrows pointing down."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("kaizen", "kaizen_agents")


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    is_package = MODULES[module].name == "__init__.py"
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _top_level_imports(module: str) -> set[str]:
    """Project modules imported when ``module`` is imported (imports inside functions are deferred
    on purpose and do not count; neither do ``if TYPE_CHECKING:`` blocks)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    targets: set[str] = set()

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, (ast.If, ast.Try)):
                visit(node.body)
                visit(getattr(node, "orelse", []))
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                source = _resolve(module, node)
                targets.add(source)
                targets.update(f"{source}.{alias.name}" for alias in node.names)

    visit(tree.body)
    return {target for target in targets if target in MODULES and target != module}


def test_no_import_cycles_between_modules() -> None:
    graph = {module: _top_level_imports(module) for module in MODULES}
    # A package importing its own submodules (its __init__ re-exporting names) is not a cycle of layers.
    edges = {module: {t for t in targets if not module.startswith(t + ".")} for module, targets in graph.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def walk(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(edges[module]):
            if state.get(target) == 1:
                cycles.append(path[path.index(target):] + [target] if target in path else [module, target])
            elif target not in state:
                walk(target, path + [target])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            walk(module, [module])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles[:5])


def _private_names_defined(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            names.add(node.attr)
        elif isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return {name for name in names if name.startswith("_")}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_touches_another_modules_privates(module: str) -> None:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    own = _private_names_defined(tree)
    allowed = {"_replace", "_asdict", "_fields", "_make", "_value_", "_name_", "_missing_", "_exit"}
    foreign = sorted({
        f"line {node.lineno}: {ast.unparse(node)}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
        and node.attr not in own and node.attr not in allowed
    })
    assert not foreign, f"{module} reaches into private attributes defined elsewhere: {foreign}"


def test_state_core_imports_nothing_above_it() -> None:
    """The state core and its stores never import the agent, the CLI or an integration."""
    above = ("kaizen.agents", "kaizen.cli", "kaizen.demo", "kaizen.integrations", "kaizen.tools", "kaizen.providers")
    offenders = {
        module: sorted(t for t in _top_level_imports(module) if t.startswith(above))
        for module in MODULES if module.startswith("kaizen.core")
    }
    assert not {m: t for m, t in offenders.items() if t}
