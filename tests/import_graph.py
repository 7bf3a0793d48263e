"""rnnbench's import graph, read from the source (every import statement, at module level or
inside a function), and what each DVC stage's script can reach through it.

    python -m tests.import_graph          # cycles, layers, and each stage's closure and imports

The static closure is a superset of what a stage runs: a function-level import counts whether or
not that branch is taken, so a dvc.yaml that covers it never misses code a stage runs.
runtime_imports runs a stage for real and lists what it loaded.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "rnnbench"


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def module_file(name: str) -> Path | None:
    base = ROOT / Path(*name.split("."))
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.is_file():
            return p
    return None


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted((ROOT / PACKAGE).rglob("*.py"))}


def _targets(tree: ast.AST, name: str, is_package: bool) -> set[str]:
    """Every rnnbench module an AST imports: `import a.b`, `from a import b` (b a module or a
    name in a), relative imports resolved."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names}
    return {t for t in out if t.split(".")[0] == PACKAGE and module_file(t) is not None}


def _with_parents(mod: str) -> set[str]:
    """Importing a.b.c runs a/__init__ and a/b/__init__ first."""
    parts = mod.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)}


def graph() -> dict[str, set[str]]:
    """module -> the rnnbench modules its source imports (their parent packages included)."""
    out = {}
    for name, path in modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        deps = set().union(*(_with_parents(t) for t in _targets(tree, name,
                                                                 path.name == "__init__.py")))
        out[name] = deps - {name}
    return out


def script_imports(script: Path) -> set[str]:
    tree = ast.parse(script.read_text(encoding="utf-8"))
    return set().union(*(_with_parents(t) for t in _targets(tree, "__main__", False)))


def closure(start: set[str], g: dict[str, set[str]] | None = None) -> set[str]:
    g = graph() if g is None else g
    seen, todo = set(), list(start)
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo += g.get(m, ())
    return seen


def cycles(g: dict[str, set[str]] | None = None) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    g = graph() if g is None else g
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def files_of(mods: set[str]) -> set[str]:
    """Repository-relative paths of the modules' source files."""
    return {str(module_file(m).relative_to(ROOT)) for m in mods}


def runtime_imports(script: str, argv: list[str], cwd: Path = ROOT,
                    env: dict | None = None) -> tuple[int, list[str]]:
    """(exit status, modules loaded) of running a stage script to its end in a fresh
    interpreter: the top-level packages and every rnnbench module."""
    code = (
        "import atexit, json, runpy, sys\n"
        "def dump():\n"
        "    mods = sorted(m for m in sys.modules if m.startswith('rnnbench') or '.' not in m)\n"
        "    sys.__stdout__.write('\\nMODULES ' + json.dumps(mods) + '\\n')\n"
        "atexit.register(dump)\n"
        f"sys.argv = [{script!r}, *{argv!r}]\n"
        f"runpy.run_path({script!r}, run_name='__main__')\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True,
                          text=True, env=env)
    line = next(x for x in done.stdout.splitlines() if x.startswith("MODULES "))
    return done.returncode, json.loads(line.removeprefix("MODULES "))


def main() -> None:
    g = graph()
    print(f"{len(g)} modules; import cycles: {cycles(g) or 'none'}")
    for script in sorted((ROOT / "pipelines").glob("*.py")):
        reach = closure(script_imports(script), g)
        print(f"{script.relative_to(ROOT)}: {len(reach)} modules reachable")
    print("work done inside a stage loads more; run the stage itself to see it all")


if __name__ == "__main__":
    main()
