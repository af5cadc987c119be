"""Matplotlib helpers shared by pnp's figures: the headless (Agg) pyplot and atomic PNG saving."""

from __future__ import annotations

import os


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (no display needed), imported on first use."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | os.PathLike, **savefig_kwargs) -> None:
    """Write ``fig`` to ``path`` through a temporary file renamed into place (never a half-written
    image; the parent directory is created), then close the figure.  ``savefig_kwargs`` go to
    ``fig.savefig`` (e.g. ``dpi``, ``bbox_inches``)."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    root, ext = os.path.splitext(path)
    tmp = f"{root}.tmp{os.getpid()}{ext}"
    try:
        fig.savefig(tmp, **savefig_kwargs)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
        pyplot().close(fig)
