"""The source tree stays clean: ruff (the pinned version) finds nothing, the packages'
import graph has no cycles and the emulator imports nothing from the compiler, and no
module grows past ~400 lines. The graph is computed from the sources (ast), nothing is
imported; docs/contracts.md shows it."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: import name -> source folder (pyproject's package-dir)
PACKAGES = {"snn2hw": ROOT / "snn2hw", "snn2hw_emulator": ROOT / "emulator"}
MAX_LINES = 400

#: Import cycles still allowed, each with who unties it (none: the boundaries and IR work
#: untied them all). A cycle that is gone must come off this list (the test says so).
KNOWN_CYCLES: list[frozenset[str]] = []
#: Modules allowed over MAX_LINES, each with who splits it (none now).
KNOWN_LONG: dict[str, str] = {}


# --------------------------------------------------------------------------- the graph


def modules(packages: dict[str, Path]) -> dict[str, Path]:
    """Dotted module name -> source file, for every .py file of the packages."""
    out = {}
    for name, folder in packages.items():
        for f in sorted(folder.rglob("*.py")):
            parts = [name, *f.relative_to(folder).with_suffix("").parts]
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _statements(tree: ast.AST) -> Iterable[ast.AST]:
    """Every node, function bodies included (a lazy import is an import too), except what
    only a type checker reads (``if TYPE_CHECKING:``)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _type_checking(node):
            yield from (n for s in node.orelse for n in (s, *_statements(s)))
            continue
        yield node
        yield from _statements(node)


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of ``known`` that module ``name`` imports (``from pkg import mod``
    names the module ``pkg.mod``; relative imports are resolved)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in _statements(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                if full in known:
                    out.add(full)
                elif base in known:
                    out.add(base)
    out.discard(name)
    return out


def import_graph(packages: dict[str, Path] = PACKAGES) -> dict[str, set[str]]:
    known = modules(packages)
    return {name: imports_of(name, path, known) for name, path in known.items()}


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan), each a set of
    modules that import each other in a ring."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(frozenset(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph)))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _ring(graph: dict[str, set[str]], comp: frozenset[str]) -> str:
    return "; ".join(f"{m} -> {', '.join(sorted(graph[m] & comp))}" for m in sorted(comp))


def test_the_import_graph_has_no_cycles() -> None:
    graph = import_graph()
    assert len(graph) > 100, f"only {len(graph)} modules found under {list(PACKAGES)}"
    found = cycles(graph)
    new = [c for c in found if c not in KNOWN_CYCLES]
    assert not new, "import cycles:\n" + "\n".join(_ring(graph, c) for c in new)
    gone = [sorted(c) for c in KNOWN_CYCLES if c not in found]
    assert not gone, f"take these untied cycles off KNOWN_CYCLES: {gone}"


def test_the_emulator_imports_nothing_from_the_compiler() -> None:
    graph = import_graph()
    bad = sorted(f"{m} -> {t}" for m, ts in graph.items() if m.startswith("snn2hw_emulator")
                 for t in ts if t.split(".")[0] == "snn2hw")
    assert not bad, "the emulator imports the compiler: " + ", ".join(bad)
    raw = [f for f in modules({"snn2hw_emulator": PACKAGES["snn2hw_emulator"]}).values()
           if re.search(r"^\s*(from|import) snn2hw\b(?!_)", f.read_text(), re.MULTILINE)]
    assert not raw, f"the emulator imports the compiler in {raw}"


def test_the_cycle_finder_finds_a_planted_ring(tmp_path: Path) -> None:
    """Negative control: two modules importing each other (one lazily, one relatively)
    and a third under TYPE_CHECKING only."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg import b\n")
    (pkg / "b.py").write_text("def f():\n    from . import a\n    return a\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                              "    from pkg import a\nimport pkg.b\n")
    graph = import_graph({"pkg": pkg})
    assert graph["pkg.c"] == {"pkg.b"}
    assert cycles(graph) == [frozenset({"pkg.a", "pkg.b"})]
    assert "pkg.a -> pkg.b; pkg.b -> pkg.a" == _ring(graph, cycles(graph)[0])


def graph_markdown(graph: dict[str, set[str]]) -> str:
    """The import graph as docs/contracts.md shows it: one line per module, its imports
    within the packages (lazy ones included), names without the ``snn2hw.`` prefix."""
    def short(m: str) -> str:
        return m.removeprefix("snn2hw.") if m != "snn2hw" else m
    lines = ["```"]
    for m in sorted(graph):
        lines.append(f"{short(m)} -> {', '.join(short(t) for t in sorted(graph[m])) or '-'}")
    return "\n".join([*lines, "```"])


def test_contracts_shows_the_import_graph() -> None:
    """docs/contracts.md holds the graph as it is (regenerate: python tests/test_tree.py)."""
    text = (ROOT / "docs" / "contracts.md").read_text()
    found = re.search(r"<!-- import-graph -->\n(.*?)\n<!-- /import-graph -->", text, re.DOTALL)
    assert found, "docs/contracts.md has no <!-- import-graph --> section"
    assert found.group(1) == graph_markdown(import_graph()), \
        "docs/contracts.md's import graph is stale: run python tests/test_tree.py"


# --------------------------------------------------------------------------- sizes


def python_files() -> list[Path]:
    skip = {".venv", ".git", "build", "out", "node_modules"}
    return [f for f in sorted(ROOT.rglob("*.py"))
            if not skip & set(f.relative_to(ROOT).parts) and ".egg-info" not in str(f)]


def test_no_module_is_over_400_lines() -> None:
    files = python_files()
    assert len(files) > 150, f"only {len(files)} Python files found under {ROOT}"
    long = {str(f.relative_to(ROOT)): n for f in files
            if (n := len(f.read_text().splitlines())) > MAX_LINES}
    new = {f: n for f, n in long.items() if f not in KNOWN_LONG}
    assert not new, f"modules over {MAX_LINES} lines (split them along a seam): {new}"
    done = sorted(set(KNOWN_LONG) - set(long))
    assert not done, f"take these from KNOWN_LONG, they are short now: {done}"


# --------------------------------------------------------------------------- ruff


def _pinned_ruff() -> str:
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["dev"]
    pin = next((d for d in dev if d.startswith("ruff==")), None)
    assert pin, f"pyproject's dev extra does not pin ruff (ruff==X): {dev}"
    return pin.split("==")[1].split()[0]


def test_ruff_finds_nothing() -> None:
    """The tree passes `ruff check` with the ruff the dev extra pins (another version has
    other default rules, so it is refused rather than trusted)."""
    run = [sys.executable, "-m", "ruff"]
    version = subprocess.run([*run, "--version"], capture_output=True, text=True, check=False)
    if version.returncode != 0:
        pytest.fail(f"ruff is not installed ({version.stderr.strip()[-200:]}): "
                    "pip install -e '.[dev]'")
    want = _pinned_ruff()
    assert version.stdout.split()[-1] == want, \
        f"{version.stdout.strip()} is installed; pyproject pins ruff=={want}"
    out = subprocess.run([*run, "check", "--no-cache", "--output-format", "concise", str(ROOT)],
                         capture_output=True, text=True, check=False, cwd=ROOT, timeout=300)
    assert out.returncode == 0, f"ruff check:\n{out.stdout[-4000:]}{out.stderr[-1000:]}"


if __name__ == "__main__":      # rewrite docs/contracts.md's import graph
    doc = ROOT / "docs" / "contracts.md"
    new = re.sub(r"(<!-- import-graph -->\n).*?(\n<!-- /import-graph -->)",
                 lambda m: m.group(1) + graph_markdown(import_graph()) + m.group(2),
                 doc.read_text(), flags=re.DOTALL)
    doc.write_text(new)
    print(f"wrote the import graph into {doc}")
