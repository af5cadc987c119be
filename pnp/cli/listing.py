"""``pnp list``: what pnp offers, without importing torch.

Usage::

    pnp list synths            # name, description, sound length, parameters (unit, bounds, scale), config keys
    pnp list representations   # name, description, arguments (type and bounds, default)
    pnp list presets           # the DTFA commands' JTFS / MSS presets (--preset), per synth
    pnp list specs             # the dataset specs shipped in data/ (name, sounds, representation)

Synths, representations and presets come from :mod:`pnp.cli.catalogue` (generated from the
library, checked against it by the tests); specs are read from ``data/*.toml`` of the source
tree.  ``--json`` prints the same as JSON.
"""

from __future__ import annotations

import argparse
import json
from typing import Any, Callable

HELP = "list the synths, representations, presets or shipped dataset specs"
WHAT = ("synths", "representations", "presets", "specs")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``list`` on ``subparsers`` (``func=run``)."""
    p = subparsers.add_parser("list", help=HELP, description=HELP + " (answers without importing torch).")
    p.add_argument("what", choices=WHAT, metavar="WHAT", help=f"one of {', '.join(WHAT)}")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from pnp.cli import catalogue

    entries = catalogue.shipped_specs() if args.what == "specs" else catalogue.load()[args.what]
    if args.json:
        print(json.dumps(entries, indent=2))
    else:
        print(FORMATS[args.what](entries))
    return 0


def _bounds(p: dict[str, Any]) -> str:
    unit = f" {p['unit']}" if p["unit"] else ""
    return f"[{p['lo']:g}, {p['hi']:g}]{unit}, {p['scale']}"


def format_synths(entries: dict[str, Any]) -> str:
    lines = []
    for name, s in entries.items():
        lines.append(f"{name}: {s['description']}")
        lines.append(f"  sound: {s['n_samples']} samples at {s['sample_rate']:g} Hz ({s['n_samples'] / s['sample_rate']:g} s)")
        lines.append("  parameters (theta, in this order):")
        width = max(len(p["name"]) for p in s["parameters"])
        for p in s["parameters"]:
            lines.append(f"    {p['name']:<{width}}  {_bounds(p):<28}  {p['description']}")
        lines.append("  config (--synth-config KEY=VALUE): " + ", ".join(f"{k}={json.dumps(v)}" for k, v in s["config"].items()))
    return "\n".join(lines)


def _short(text: str, width: int = 150) -> str:
    """``text`` cut at a word boundary to at most ``width`` characters (``…`` marks a cut)."""
    return text if len(text) <= width else text[: text.rfind(" ", 0, width - 1)] + " …"


def format_representations(entries: dict[str, Any]) -> str:
    lines = []
    for name, r in entries.items():
        lines.append(f"{name}: {r['description']}")
        width = max(len(a["name"]) for a in r["arguments"])
        for a in r["arguments"]:
            default = "required" if a["required"] else f"default {a['default']}"
            lines.append(f"    {a['name']:<{width}}  {a['type']} ({default}): {_short(a['description'])}")
    return "\n".join(lines)


def format_presets(entries: dict[str, Any]) -> str:
    lines = []
    for name, pr in entries.items():
        lines.append(f"{name}: {pr['description']}")
        for synth, by_loss in pr["synths"].items():
            for loss, cfg in by_loss.items():
                rep = ", ".join(f"{k}={v}" for k, v in cfg["representation"].items())
                lines.append(f"    {synth} {loss}: decimation {cfg['decimation']}; {rep}")
    return "\n".join(lines)


def format_specs(entries: list[dict[str, Any]]) -> str:
    if not entries:
        return "no dataset specs found (they ship in data/*.toml of a source checkout)"
    lines = []
    for s in entries:
        lines.append(f"{s['path']}: {s['name']} - {s['description']}")
        fixed = ", ".join(f"{k} = {v:g}" for k, v in s["fixed"].items())
        lines.append(f"    {s['synth']}: {s['sounds']} sounds over ({', '.join(s['free'])})"
                     + (f", fixed {fixed}" if fixed else "") + f"; {s['representation']}; stores "
                     + ", ".join(s["arrays"]))
    return "\n".join(lines)


FORMATS: dict[str, Callable[[Any], str]] = {"synths": format_synths, "representations": format_representations, "presets": format_presets,
           "specs": format_specs}
