"""The ``pnp`` command's contract for bad input: one line, exit 2, no traceback, nothing created."""

from __future__ import annotations

import importlib.metadata

import pytest

from pnp.cli import main


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"pnp {importlib.metadata.version('pnp')}"


@pytest.mark.parametrize("argv, message", [
    (["landscape", "--loss", "jtfs", "--loss-config", "wobble=1"], "unexpected keyword argument 'wobble'"),
    (["match", "--loss", "jtfs", "--loss-config", "wobble=1"], "unexpected keyword argument 'wobble'"),
])
def test_bad_options_are_one_line_and_create_nothing(argv, message, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("command", [["knn", "STORE"], ["embed", "STORE"], ["train", "STORE", "--loss", "ploss"],
                                     ["landscape", "--loss", "mss"], ["synth", "amchirp"]])
def test_an_out_path_under_a_regular_file_is_refused_before_any_work(command, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    argv = [str(tmp_path / "missing.zarr") if a == "STORE" else a for a in command]
    out = blocker / ("x.wav" if command[0] == "synth" else "out")
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"--out {out}: {blocker} is a regular file, not a directory" in err and "\n" not in err


def test_help_does_not_import_torch():
    """``pnp --help`` (building every sub-command's parser) answers without importing torch."""
    import subprocess
    import sys

    code = "import sys; from pnp.cli import build_parser; build_parser(); print(sorted({'torch', 'dask', 'zarr'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
