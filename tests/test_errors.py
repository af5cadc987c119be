"""pnp.errors: the one-line failure reports shared by ``pnp`` and the workflows' entry points."""

from __future__ import annotations

import errno

import pytest

from pnp.errors import one_line, run_reported


@pytest.mark.parametrize("err, text", [
    (ValueError("--seeds must be\n   an integer >= 1"), "--seeds must be an integer >= 1"),
    (TypeError(""), "TypeError"),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "data/x.toml"), "data/x.toml: No such file or directory"),
    (PermissionError(errno.EACCES, "Permission denied", "/ro/out"), "/ro/out: Permission denied"),
    (OSError("the scheduler at tcp://x:8786 did not answer"), "OSError: the scheduler at tcp://x:8786 did not answer"),
    (ImportError("s3:// paths need s3fs"), "ImportError: s3:// paths need s3fs"),
])
def test_one_line_names_the_problem_on_one_line(err, text):
    assert one_line(err) == text


def _raise(err):
    def body():
        raise err
    return body


def test_run_reported_exit_codes_and_messages(capsys, monkeypatch):
    monkeypatch.delenv("PNP_DEBUG", raising=False)
    assert run_reported("prog", lambda: 0) == 0 and run_reported("prog", lambda: None) == 0
    assert run_reported("prog", lambda: 1) == 1
    assert run_reported("prog x", _raise(ValueError("bad --k, got 0"))) == 2
    assert capsys.readouterr().err == "prog x: error: bad --k, got 0\n"
    assert run_reported("prog", _raise(KeyboardInterrupt()), "; run it again to resume") == 130
    assert capsys.readouterr().err == "prog: interrupted; run it again to resume\n"
    assert run_reported("prog", _raise(BrokenPipeError())) == 0
    with pytest.raises(RuntimeError):  # a bug is not dressed up as bad input
        run_reported("prog", _raise(RuntimeError("bug")))
    monkeypatch.setenv("PNP_DEBUG", "1")
    with pytest.raises(ValueError):
        run_reported("prog", _raise(ValueError("bad")))


def test_a_workflow_module_entry_point_reports_bad_input_on_one_line(tmp_path):
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "pnp.pipelines.metric_spread", str(tmp_path / "none.zarr")],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [f"python -m pnp.pipelines.metric_spread: error: no store at "
                                               f"{tmp_path / 'none.zarr'}"]
