"""Every ```python block of README.md and docs/*.md runs as written.

Each block runs in a fresh interpreter, in a scratch directory where ``data/stores/demo.zarr`` is
a small real store (the tiny test store, with audio) so that the snippets that open the demo store
find one.  A block preceded by ``<!-- snippet: not run (reason) -->`` is skipped (only the SLURM
example, which needs a cluster); the test checks that each such marker gives its reason.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from _stores import build_tiny_store

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SKIP = re.compile(r"<!-- snippet: not run \((?P<why>[^)]+)\) -->\s*$")


def snippets() -> list[tuple[str, str, str | None]]:
    """(id, code, reason to skip or None) of every python block."""
    out = []
    for page in PAGES:
        lines = page.read_text(encoding="utf-8").split("\n")
        i = 0
        while i < len(lines):
            if lines[i].strip() == "```python":
                start = i
                j = i + 1
                while lines[j].strip() != "```":
                    j += 1
                prev = lines[start - 1] if start else ""
                m = SKIP.search(prev)
                out.append((f"{page.relative_to(ROOT)}:{start + 1}", "\n".join(lines[start + 1 : j]),
                            m.group("why") if m else None))
                i = j
            i += 1
    return out


SNIPPETS = snippets()


def test_there_are_snippets_and_every_skip_has_a_reason():
    assert len(SNIPPETS) >= 5
    assert [s[0] for s in SNIPPETS if s[2] is not None] == [s[0] for s in SNIPPETS if "SLURMCluster" in s[1]]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    d = tmp_path_factory.mktemp("snippets")
    (d / "data" / "stores").mkdir(parents=True)
    build_tiny_store(d / "data" / "stores" / "demo.zarr", audio=True)
    return d


@pytest.mark.parametrize("ident, code, skip", SNIPPETS, ids=[s[0] for s in SNIPPETS])
def test_snippet_runs_as_written(ident, code, skip, scratch):
    if skip:
        pytest.skip(skip)
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", code], cwd=scratch, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, f"{ident}:\n{proc.stderr[-3000:]}"
