"""Every ``pnp ...`` example of README.md and docs/*.md (```bash blocks) parses with the real
``pnp`` parser, and the cheap ones run as written on a tiny store.

An example is one command of a bash block (continuation lines joined, comments dropped, ``&&``
chains split); a synopsis line (``[--k 5]``, ``a|b``, ``STORE``) is not an example.  The cheap
commands on the demo store run in document order in a scratch directory where
``data/stores/demo.zarr`` is the tiny test store (with audio), with the overrides below for a
27-sample store; the others (precompute of the real specs, other stores, the 4-s DTFA experiments,
the study, matching) are parsed only: their workflows run in their own test modules on tiny settings.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from _stores import build_tiny_store

from pnp.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: commands run as written (plus OVERRIDES); everything else is parsed only
RUN = ("list", "synth", "store", "train", "evaluate", "predict", "knn", "embed")
#: appended for the 27-sample store (argparse: the last value of an option wins)
OVERRIDES = {"embed": ["--n-neighbors", "5", "--quiet"], "knn": ["--quiet"], "train": ["--quiet"],
             "evaluate": ["--quiet"], "predict": ["--quiet"], "store verify": ["--quiet"]}
SYNOPSIS = ("[", "|", "STORE", "RUN_DIR", "SPEC", "DIR", "...")


def examples() -> list[tuple[str, list[str]]]:
    """(page:line, argv after ``pnp``) of every example, in document order."""
    out = []
    for page in PAGES:
        lines = page.read_text(encoding="utf-8").split("\n")
        in_bash, command, start = False, "", 0
        for i, line in enumerate(lines, 1):
            if line.strip().startswith("```"):
                in_bash = not in_bash and line.strip() in ("```bash", "```sh")
                continue
            if not in_bash:
                continue
            if not command:
                start = i
            command += line.strip()
            if command.endswith("\\"):
                command = command[:-1] + " "
                continue
            words, command = shlex.split(command, comments=True), ""
            while words:
                part = words[: words.index("&&")] if "&&" in words else words
                words = words[len(part) + 1:]
                if part[:1] == ["pnp"] and not any(m in w for w in part for m in SYNOPSIS):
                    out.append((f"{page.relative_to(ROOT)}:{start}", part[1:]))
    return out


EXAMPLES = examples()


def test_the_docs_have_examples_of_every_command():
    assert {argv[0] for _, argv in EXAMPLES} >= {"list", "synth", "precompute", "store", "train", "evaluate", "predict",
                                                 "study", "knn", "embed", "landscape", "match", "chirp-pairs"}


@pytest.mark.parametrize("where, argv", EXAMPLES, ids=[f"{w} {' '.join(a)[:60]}" for w, a in EXAMPLES])
def test_every_example_parses(where, argv, capsys):
    try:
        build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"{where}: pnp {' '.join(argv)}: {capsys.readouterr().err.strip()}")


def _runnable(argv: list[str]) -> bool:
    """A cheap command on the demo store, or on a run directory an earlier example wrote."""
    stores = [a for a in argv if a.endswith(".zarr")]
    runs = [a for a in argv if a.startswith("runs/")] if argv[0] == "evaluate" else []
    if argv[0] == "predict":  # its run directory (the sounds may be files an earlier example wrote)
        runs = [argv[1]]
    return argv[0] in RUN and all(a == "data/stores/demo.zarr" for a in stores) and all(Path(r).is_dir() for r in runs)


def test_the_cheap_examples_run_as_written(tmp_path, monkeypatch, capsys):
    (tmp_path / "data" / "stores").mkdir(parents=True)
    build_tiny_store(tmp_path / "data" / "stores" / "demo.zarr", audio=True)
    monkeypatch.chdir(tmp_path)
    ran = []
    for where, argv in EXAMPLES:
        if not _runnable(argv):
            continue
        code = main([*argv, *OVERRIDES.get(argv[0], OVERRIDES.get(" ".join(argv[:2]), []))])
        err = capsys.readouterr().err
        assert code == 0, f"{where}: pnp {' '.join(argv)} exited {code}: {err[-2000:]}"
        ran.append(argv[0])
    assert set(ran) == set(RUN)
    assert (tmp_path / "runs" / "pnp" / "best.pt").exists() and (tmp_path / "runs" / "demo" / "embed" / "embedding.png").exists()
