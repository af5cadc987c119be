"""Matplotlib helpers shared by pnp's figures: figures without pyplot's global state, and atomic
PNG saving.

:func:`pyplot` returns a small stand-in for the four ``matplotlib.pyplot`` calls pnp uses
(``subplots``, ``figure``, ``close``, ``get_cmap``) that builds ``matplotlib.figure.Figure``
objects drawn by the Agg canvas: no display is needed, and the backend of a notebook or
application that imports pnp is never switched.
"""

from __future__ import annotations

import os
from typing import Any

from pnp.files import atomic_write


class _Figures:
    """``subplots`` / ``figure`` / ``close`` / ``get_cmap`` on ``matplotlib.figure.Figure``."""

    @staticmethod
    def figure(**kwargs: Any):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(**kwargs)
        FigureCanvasAgg(fig)
        return fig

    def subplots(self, nrows: int = 1, ncols: int = 1, *, figsize=None, dpi=None, layout=None,
                 subplot_kw=None, gridspec_kw=None, **kwargs: Any):
        fig = self.figure(figsize=figsize, dpi=dpi, layout=layout)
        axes = fig.subplots(nrows, ncols, subplot_kw=subplot_kw, gridspec_kw=gridspec_kw, **kwargs)
        return fig, axes

    @staticmethod
    def close(fig=None) -> None:
        """Nothing to release: the figure is not registered anywhere (kept for pyplot's API)."""

    @staticmethod
    def get_cmap(name: str | None = None, lut: int | None = None):
        import matplotlib

        cmap = matplotlib.colormaps[name or "viridis"]
        return cmap.resampled(lut) if lut is not None else cmap


def pyplot() -> _Figures:
    """The pyplot stand-in above (see the module docs)."""
    return _Figures()


def save_figure(fig, path: str | os.PathLike, **savefig_kwargs) -> None:
    """Write ``fig`` to ``path`` through a temporary file renamed into place (never a half-written
    image; the parent directory is created).  ``savefig_kwargs`` go to ``fig.savefig`` (e.g.
    ``dpi``, ``bbox_inches``)."""
    atomic_write(path, lambda tmp: fig.savefig(tmp, **savefig_kwargs))
