"""The house's shape (docs/architecture.md): no import circle between files, and no import from a lower floor to a
higher one. Imports inside functions count too: hiding an arrow in a function does not remove it."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# floors, lowest first: a module may import its own floor or lower ones only
FLOORS = [
    ["prefopt", "losses", "prefopt.tensors", "prefopt.seeds", "prefopt.cache", "prefopt.stages", "prefopt.run_folder",
     "prefopt.distributed"],
    ["prefopt.data", "prefopt.world"],
    ["prefopt.trainer"],
    ["prefopt.ches", "prefopt.integrations"],
    ["prefopt.rounds"],
    ["prefopt.config", "prefopt.modeling", "prefopt.outputs", "prefopt.trackers", "prefopt.smoke",
     "prefopt.validate_data", "prefopt.card", "prefopt.hub", "prefopt.samples"],
    ["prefopt.validate", "prefopt.cli_help"],
    ["prefopt.run", "prefopt.apidoc", "prefopt.evaluate_cli"],
    ["prefopt.train", "prefopt.models"],
]


def _modules() -> dict[str, Path]:
    out = {}
    for path in [*ROOT.joinpath("prefopt").rglob("*.py"), *ROOT.joinpath("losses").rglob("*.py")]:
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def _edges(modules: dict[str, Path]) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            edges[name] |= {t for t in targets if t in modules and t != name}
    return edges


def _floor(module: str) -> int:
    for level, members in enumerate(FLOORS):  # the most specific name decides ("prefopt" alone is the package file)
        if module in members or any(module.startswith(m + ".") for m in members if m != "prefopt"):
            return level
    raise AssertionError(f"{module} is on no floor: add it to FLOORS and to docs/architecture.md")


def test_no_import_runs_from_a_lower_floor_to_a_higher_one():
    edges = _edges(_modules())
    upward = sorted(f"{a} (floor {_floor(a)}) imports {b} (floor {_floor(b)})"
                    for a, bs in edges.items() for b in bs if _floor(b) > _floor(a))
    assert not upward, "\n".join(upward)


def test_no_import_circle_between_files():
    modules = _modules()
    edges = _edges(modules)
    # a package's __init__ re-exports its own modules: that is not a circle of ideas
    edges = {a: {b for b in bs if not (a in modules and modules[a].name == "__init__.py" and b.startswith(a + "."))}
             for a, bs in edges.items()}
    state: dict[str, int] = {}
    circles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                circles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for name in sorted(modules):
        if name not in state:
            visit(name, [name])
    assert not circles, "\n".join(" -> ".join(c) for c in circles)


def test_every_module_is_placed_on_a_floor():
    for name in _modules():
        _floor(name)
