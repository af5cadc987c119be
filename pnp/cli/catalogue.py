"""What ``pnp list`` shows: the synths, representations and DTFA presets, read from the
library once and kept in ``catalogue.json`` next to this module, so that ``pnp list`` answers
without importing torch.

:func:`load` reads the JSON (no heavy imports); :func:`build` computes the same from the
library (imports torch; ``tests/test_cli.py`` checks that the two agree); ``python -m
pnp.cli.catalogue`` rewrites the JSON after a library change.  :func:`shipped_specs` summarises
the dataset specs of ``data/*.toml`` from their TOML alone.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

PATH = Path(__file__).with_name("catalogue.json")
#: the dataset specs shipped with a source checkout
DATA = Path(__file__).resolve().parents[2] / "data"
PRESET_DESCRIPTIONS = {
    "fast": "the paper's JTFS computed on the sound decimated by D (4 for amchirp, 2 for arpeggio): the same "
            "filters in Hz and seconds, about 5x cheaper; MSS as in the paper",
    "paper": "the Mesostructures paper's JTFS (J=12, Q=(8,2), J_fr=5, Q_fr=2, F=0, T=2**13 on 2**15 samples, "
             "J and T scaled with the sound's length) and MSS (windows 2**5..2**10, hop = window / 4)",
}
#: representation arguments not shown in the presets (output layout, not the transform)
_LAYOUT_KEYS = ("name", "out_type", "format", "log1p_c", "stride", "stride_fr")


def load() -> dict[str, Any]:
    """The catalogue: ``{"synths": {...}, "representations": {...}, "presets": {...}}``."""
    return json.loads(PATH.read_text(encoding="utf-8"))


def _plain(text: str) -> str:
    """Docstring text on one line, without reST roles and literals (``:meth:`x``` → ``x``)."""
    text = re.sub(r":\w+:`~?\.?([^`]+)`", r"\1", text).replace("``", "").replace("`", "")
    return " ".join(text.replace(" (see module docstring)", "").split())


def _first_sentence(text: str) -> str:
    """Up to the first full stop followed by a capital, quote, bracket or digit (not the one of "et al." / "e.g.")."""
    text = _plain(text)
    for m in re.finditer(r"\.\s+(?=[A-Z'(0-9])", text):
        if not re.search(r"\b(al|e\.g|i\.e|eqs?|cf|vs)$", text[: m.start()]):
            return text[: m.start() + 1]
    return text


def _arguments(cls: type) -> list[dict[str, Any]]:
    """The constructor's arguments with the type / bounds and first sentence of each one's
    entry in the class docstring's ``Parameters`` section."""
    doc = inspect.getdoc(cls) or ""
    entries: dict[str, tuple[str, list[str]]] = {}
    current = None
    for line in doc.split("Parameters\n----------\n", 1)[-1].splitlines():
        m = re.match(r"^(\w+) : (.+)$", line)
        if m:
            current = m.group(1)
            entries[current] = (m.group(2).replace("``", ""), [])
        elif line.startswith("    ") and current is not None:
            entries[current][1].append(line.strip())
        elif line.strip() and not line.startswith(" "):
            current = None
    out = []
    for name, par in inspect.signature(cls).parameters.items():
        if name not in entries:
            continue
        required = par.default is inspect.Parameter.empty
        kind, text = entries[name]
        out.append({"name": name, "type": kind, "required": required,
                    "default": None if required else json.loads(json.dumps(par.default)),
                    "description": _first_sentence(" ".join(text))})
    return out


def _synths() -> dict[str, Any]:
    import pnp.synth as ps

    out = {}
    for name in ps.available():
        synth = ps.get(name)
        module = sys.modules[type(synth).__module__]
        config = {k: v for k, v in synth.config().items() if k != "name"}
        out[name] = {
            "description": _plain((module.__doc__ or "").strip().splitlines()[0]),
            "sample_rate": float(synth.sample_rate), "n_samples": int(synth.n_samples),
            "parameters": [{"name": p.name, "unit": p.unit, "lo": p.lo, "hi": p.hi, "scale": p.scale,
                            "description": p.description} for p in synth.space.parameters],
            "config": config,
        }
    return out


def _representations() -> dict[str, Any]:
    import pnp.scattering as sc

    out = {}
    for name in sc.names():
        cls = sc._load(name)
        out[name] = {"description": _plain((inspect.getdoc(cls) or "").splitlines()[0]), "arguments": _arguments(cls)}
    return out


def _presets() -> dict[str, Any]:
    from pnp.matching.problem import LOSSES, PRESETS, make_problem

    out: dict[str, Any] = {}
    for preset in PRESETS:
        synths: dict[str, Any] = {}
        for synth in ("amchirp", "arpeggio"):
            synths[synth] = {}
            for loss in LOSSES:
                cfg = make_problem(synth, loss, preset=preset).config()
                rep = {k: v for k, v in cfg["representation"].items() if k not in _LAYOUT_KEYS and v is not None}
                synths[synth][loss] = {"decimation": cfg["decimation"], "representation": rep}
        out[preset] = {"description": PRESET_DESCRIPTIONS[preset], "synths": synths}
    return out


def build() -> dict[str, Any]:
    """The catalogue computed from the library (imports torch; builds each preset's transform)."""
    data = {"synths": _synths(), "representations": _representations(), "presets": _presets()}
    return json.loads(json.dumps(data))


def write() -> None:
    """Rewrite ``catalogue.json`` from :func:`build`."""
    PATH.write_text(json.dumps(build(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _grid_sounds(grid: dict[str, Any], n_free: int) -> int | None:
    if grid.get("kind") == "random":
        return grid.get("size")
    counts = grid.get("counts")
    if isinstance(counts, int):
        return counts**n_free
    if isinstance(counts, list):
        total = 1
        for c in counts:
            total *= int(c)
        return total
    return None


def _spec_summary(path: Path, synths: dict[str, Any]) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    synth = raw.get("synth", {})
    fixed = synth.get("fixed", {})
    names = [p["name"] for p in synths.get(synth.get("name"), {}).get("parameters", [])]
    free = [n for n in names if n not in fixed]
    rep = raw.get("representation", {})
    store = raw.get("store", {})
    arrays = ["features"] + (["Jacobians", "metrics"] if store.get("jacobian", True) else []) + (
        ["audio"] if store.get("audio", False) else [])
    rep_cfg = " ".join(f"{k}={json.dumps(v)}" for k, v in rep.get("config", {}).items())
    return {"path": os.path.relpath(path), "name": raw.get("name"), "description": raw.get("description", ""),
            "synth": synth.get("name"), "free": free, "fixed": fixed,
            "sounds": _grid_sounds(raw.get("grid", {}), len(free)),
            "representation": f"{rep.get('name')} {rep_cfg}".strip(), "arrays": arrays}


def shipped_specs(directory: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """One summary per ``*.toml`` of ``directory`` (default: the checkout's ``data/``), sorted."""
    folder = Path(directory) if directory is not None else DATA
    if not folder.is_dir():
        return []
    synths = load()["synths"]
    return [_spec_summary(p, synths) for p in sorted(folder.glob("*.toml"))]


if __name__ == "__main__":  # pragma: no cover
    write()
    print(f"wrote {PATH}")
