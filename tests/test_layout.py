"""The front ends only parse, call the application layer (astrorag.workflows) and render."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "astrorag"
FRONT_ENDS = ("cli.py", "ui.py", "tools.py")
ORCHESTRATION = {
    "opens an index": r"\bIndex\s*\(|\bIndex\.(open|list|drop|exists)\b",
    "writes BibTeX": r"\bbibtex\s*\(",
    "writes a bundle": r"\b(save_bundle|make_bundle)\s*\(",
    "builds retrieval filters": r"\bFilters\s*\(",
    "loads the rule graph": r"\bload_graph\s*\(",
}


def test_front_ends_hold_no_orchestration():
    found = []
    for name in FRONT_ENDS:
        text = (PACKAGE / name).read_text()
        for what, pattern in ORCHESTRATION.items():
            for match in re.finditer(pattern, text):
                line = text[:match.start()].count("\n") + 1
                found.append(f"{name}:{line} {what}")
    assert not found, "move these into astrorag/workflows: " + "; ".join(found)


def test_front_ends_render_through_one_module():
    """A result reads the same in the terminal and the app: their renderers live in astrorag.render."""
    import ast

    own = [f"{name}:{node.lineno} {node.name}" for name in FRONT_ENDS
           for node in ast.walk(ast.parse((PACKAGE / name).read_text()))
           if isinstance(node, ast.FunctionDef) and re.search(r"_(markdown|text|table)$", node.name)]
    assert not own, "move these renderers into astrorag/render: " + "; ".join(own)


def test_the_sampler_has_one_default_for_its_live_points():
    defaults = [f"{p.relative_to(PACKAGE)}:{i}" for p in PACKAGE.rglob("*.py")
                for i, line in enumerate(p.read_text().splitlines(), 1)
                if re.search(r"\bn_live\s*(:\s*int)?\s*=\s*(setting\()?\d", line) or re.search(r"n_live=\d", line)]
    # the one default, and the doctest that shows how to pass another
    assert [d.split(":")[0] for d in defaults if not d.startswith("fit/__init__.py")] == ["settings.py"], defaults
    from astrorag.settings import Settings

    assert Settings().fit.sampler.n_live == 200 and Settings(n_live=50).fit.sampler.n_live == 50


def test_the_readme_is_a_short_guide_whose_counts_come_from_the_code():
    import re

    from astrorag.graph.rulebook import load_seed_rules

    readme = (PACKAGE.parent / "README.md").read_text()
    assert len(readme.splitlines()) < 350
    seed, contested = map(int, re.search(r"(\d+) seed rules, (\d+) of them contested", readme).groups())
    rules = load_seed_rules()
    assert (seed, contested) == (len(rules), sum(bool(r.contradicted_by) for r in rules))
    for path in re.findall(r"(?:astrorag|tests|eval)/[\w/.-]+\.(?:csv|jsonl|md|json)", readme):
        assert (PACKAGE.parent / path).exists(), f"the README names {path}, which is not there"


def test_the_packages_import_downward_only():
    """index < ingest, llm, render < graph < sed < fit < amortize: a package never imports one above it at
    module level."""
    import ast

    layers = [{"types", "errors", "settings", "files", "jsonl", "hardware", "locks", "signals", "sentences"},
              {"index"}, {"ingest", "llm", "render"}, {"graph"}, {"sed"}, {"fit"}, {"amortize"}]
    level = {name: i for i, names in enumerate(layers) for name in names}
    upward = []
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        here = parts[0]
        if here not in level:
            continue
        for node in ast.parse(path.read_text()).body:   # module level: lazy imports inside functions are fine
            if isinstance(node, ast.ImportFrom) and node.level:
                # a module's package is parts[:-1], and so is an __init__'s; each level above one climbs a package
                base = list(parts[:-1])[:len(parts) - node.level]
                target = (base + (node.module or "").split("."))[0]
                if target in level and level[target] > level[here]:
                    upward.append(f"{'/'.join(parts)}.py imports {target}")
    assert not upward, upward


def test_ruff_finds_nothing():
    """The lint rules of pyproject.toml ([tool.ruff]) hold over the package, the tests and eval/."""
    import importlib.util
    import subprocess
    import sys

    if importlib.util.find_spec("ruff") is None:
        pytest.skip('ruff is not installed: pip install -e ".[test]"')
    run = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "astrorag", "tests", "eval", "app.py"],
                         cwd=PACKAGE.parent, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:]
