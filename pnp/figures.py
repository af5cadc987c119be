"""Matplotlib helpers shared by pnp's figures: the headless (Agg) pyplot and atomic PNG saving."""

from __future__ import annotations

import os

from pnp.files import atomic_write


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
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, **savefig_kwargs))
    finally:
        pyplot().close(fig)
