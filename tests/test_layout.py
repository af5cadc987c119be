"""The layout of the code: library → workflows → CLI, with no import pointing back, and one
installed top-level name, ``pnp`` (the workflows folder ``pipelines/`` is ``pnp.pipelines``)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def modules() -> dict[str, Path]:
    """Importable name → file, for every module of the distribution."""
    out = {}
    for base, prefix in ((ROOT / "pnp", "pnp"), (ROOT / "pipelines", "pnp.pipelines")):
        for f in base.rglob("*.py"):
            parts = list(f.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join([prefix, *parts])] = f
    return out


def imports(name: str, path: Path) -> set[str]:
    """Absolute names of everything the module imports, at any depth (functions included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)
    return out


def layer(name: str) -> str:
    if name in ("pnp.cli", "pnp.__main__") or name.startswith("pnp.cli."):  # `python -m pnp` is the CLI
        return "cli"
    if name == "pnp.pipelines" or name.startswith("pnp.pipelines."):
        return "workflows"
    return "library"


def test_imports_point_down_library_workflows_cli():
    mods = modules()
    assert "pnp.pipelines.precompute" in mods and "pnp.store.integrity" in mods and "pnp.cli.store" in mods
    rank = {"library": 0, "workflows": 1, "cli": 2}
    wrong = []
    for name, path in sorted(mods.items()):
        for target in sorted(imports(name, path)):
            if target == "pipelines" or target.startswith("pipelines."):
                wrong.append(f"{name} imports {target} (the workflows are pnp.pipelines)")
            elif target.startswith("pnp") and rank[layer(target)] > rank[layer(name)]:
                wrong.append(f"{name} ({layer(name)}) imports {target} ({layer(target)})")
    assert wrong == []


def test_the_distribution_lists_every_package_under_one_top_level_name():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "pnp").rglob("__init__.py")}
    on_disk.add("pnp.pipelines")
    assert listed == on_disk
    assert {name.split(".")[0] for name in listed} == {"pnp"}
    assert cfg["package-dir"] == {"pnp.pipelines": "pipelines"}
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_split_and_status_names_have_one_definition():
    """Every list of split names (the CLI's, the evaluations', the dataset's) is drawn from the
    store's one code table, and the codes written into a store's attributes are those."""
    from pnp.cli.options import SPLITS as CLI_SPLITS
    from pnp.data import SPLITS as DATA_SPLITS
    from pnp.pipelines.evaluate import EMBED_SPLITS, KNN_SPLITS
    from pnp.store.codes import SELECTIONS, SPLIT_NAMES, STATUS_NAMES, Split, Status
    from pnp.synth.space import SPLIT_NAMES as SPACE_SPLIT_NAMES

    assert SPLIT_NAMES == ("train", "val", "test") == SPACE_SPLIT_NAMES
    assert [Split[n.upper()] for n in SPLIT_NAMES] == [0, 1, 2]
    assert STATUS_NAMES == ("pending", "done", "failed") and [int(s) for s in Status] == [0, 1, 2]
    assert sorted(CLI_SPLITS) == sorted(SELECTIONS) == sorted(DATA_SPLITS) == sorted(EMBED_SPLITS)
    assert set(KNN_SPLITS) == set(SPLIT_NAMES)
