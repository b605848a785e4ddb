"""The data path is one way: a module imports only from its own stage and the stages before it,
and never a private name of another module (docs/ARCHITECTURE.md, "Layout"). The engine names no
study's scenario: a study plugs in through the engine's types, after present and before drive."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[1] / "harness"
SCENARIOS = HARNESS.parent / "scenarios"
# In data-path order; a module may import from its own stage and any stage to its left.
STAGES = ("define", "build", "run", "store", "analyse", "present", "studies", "drive")


def stage_of(module: str) -> int | None:
    parts = module.split(".")
    if len(parts) >= 2 and parts[0] == "harness" and parts[1] in STAGES:
        return STAGES.index(parts[1])
    return None


def module_name(path: Path) -> str:
    rel = path.relative_to(HARNESS.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, imported module, names) for every import in the file, function-level ones too."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path).rsplit(".", 0 if path.name == "__init__.py" else 1)[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([module] if module else []))
            found.append((node.lineno, module, [alias.name for alias in node.names]))
    return found


SOURCES = sorted(HARNESS.rglob("*.py"))


def test_every_module_sits_in_a_stage():
    loose = [module_name(p) for p in SOURCES
             if stage_of(module_name(p)) is None and module_name(p) not in ("harness", "harness.__main__")]
    assert not loose, f"modules outside the stages {STAGES}: {loose}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: module_name(p))
def test_imports_follow_the_data_path(path):
    own = stage_of(module_name(path))
    if own is None:
        return
    backwards = [f"line {line}: {module} ({STAGES[stage_of(module)]} comes after {STAGES[own]})"
                 for line, module, _ in imports(path)
                 if stage_of(module) is not None and stage_of(module) > own]
    assert not backwards, f"{module_name(path)} imports up the data path: {backwards}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: module_name(p))
def test_no_private_name_of_another_module(path):
    me = module_name(path)
    private = []
    for line, module, names in imports(path):
        if not module.startswith("harness") or module == me:
            continue
        private += [f"line {line}: {module}.{n}" for n in names if n.startswith("_") and not n.startswith("__")]
        if any(part.startswith("_") and not part.startswith("__") for part in module.split(".")):
            private.append(f"line {line}: {module}")
    assert not private, f"{me} imports private names: {private}"


def test_the_checker_sees_a_backward_import(tmp_path):
    """A fake define module that imports from analyse is caught (the test can fail)."""
    fake = HARNESS / "define" / "_layout_probe_tmp.py"
    fake.write_text("from harness.analyse import summary\nfrom harness.define.scenario import _suggest\n")
    try:
        found = imports(fake)
        assert any(stage_of(m) == STAGES.index("analyse") for _, m, _ in found)
        assert any("_suggest" in names for _, _, names in found)
    finally:
        fake.unlink()


def scenario_names_in(text: str, names: set[str], axes: set[str]) -> set[str]:
    """The scenario names a source text mentions as words. A name that is also an axis (gomemlimit,
    madvdontneed) may stand in quotes on its own: that is the axis (a cells.csv column), not the scenario."""
    found = set()
    for name in names:
        for match in re.finditer(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", text):
            quoted = text[match.start() - 1:match.start()] in "'\"" and text[match.end():match.end() + 1] in "'\""
            if not (name in axes and quoted and match.start() > 0):
                found.add(name)
    return found


def test_present_names_no_scenario():
    """The report draws what the study's claims declare; present/ knows no scenario by name."""
    from harness.define.axes import AXES

    names = {p.stem for p in SCENARIOS.glob("*.toml")}
    assert len(names) > 10, "scenarios/*.toml not found"
    axes = set(AXES)
    named = {str(p.relative_to(HARNESS.parent)): sorted(found) for p in sorted((HARNESS / "present").rglob("*.py"))
             if (found := scenario_names_in(p.read_text(), names, axes))}
    assert not named, f"harness/present/ names scenarios: {named}"


def test_the_scenario_check_sees_a_scenario_name():
    names, axes = {"alloc_release", "gomemlimit"}, {"gomemlimit"}
    assert scenario_names_in('cells_of("alloc_release")', names, axes) == {"alloc_release"}
    assert scenario_names_in("figures/alloc_release_rss.png", names, axes) == set()  # a longer word
    assert scenario_names_in("# e.g. alloc_release", names, axes) == {"alloc_release"}
    assert scenario_names_in("row['gomemlimit']", names, axes) == set()  # the axis
    assert scenario_names_in("gomemlimit: by gomemlimit", names, axes) == {"gomemlimit"}
