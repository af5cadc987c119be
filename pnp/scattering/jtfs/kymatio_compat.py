"""kymatio 0.4's torch JTFS frontend, computed by pnp: for a kymatio user, one import changes::

    from kymatio.torch import TimeFrequencyScattering                        # before
    from pnp.scattering.jtfs.kymatio_compat import TimeFrequencyScattering   # after

:class:`TimeFrequencyScattering` is pnp's :class:`~pnp.scattering.jtfs.TimeFrequencyScattering`
(kymatio 0.4's numbers, ≈ 25× faster, every autodiff mode) with kymatio's constructor surface:
its ``backend`` / ``frontend`` arguments (``'torch'`` only), ``build()`` (kymatio builds its
filters there; pnp has built them in ``__init__``), ``_check_runtime_args()`` and
``scattering(x)``.  Attributes ``J, J_fr, Q, Q_fr (a 1-tuple), T, F, stride, stride_fr,
out_type, format`` and ``meta()`` (keys ``order, n, j, xi, sigma, n_fr, j_fr, xi_fr,
sigma_fr, spin, key``) follow kymatio, and so do ``out_type='list'`` / ``'dict'``.  Not
implemented: ``T=0`` (unaveraged paths of different lengths), refused at construction.
``tests/test_kymatio_compat.py`` runs kymatio's own test file against this class.
"""

from __future__ import annotations

import torch

from pnp.scattering.jtfs.frontend import TimeFrequencyScattering as _PnpJTFS

BACKENDS = ("torch",)


class TimeFrequencyScattering(_PnpJTFS):
    """kymatio 0.4's ``TimeFrequencyScattering`` (torch frontend) on pnp's JTFS; see the module docs."""

    def __init__(self, J, J_fr, Q, shape, T=None, stride=None, Q_fr=1, F=None, stride_fr=None, out_type="array",
                 format="time", backend="torch", frontend="torch", **pnp_options):
        for name, value in (("backend", backend), ("frontend", frontend)):
            if value is not None and getattr(value, "name", value) not in BACKENDS:
                raise ValueError(f"{name} must be 'torch' (pnp's JTFS is a torch module), got {value!r}")
        super().__init__(J=J, J_fr=J_fr, Q=Q, shape=shape, T=T, stride=stride, Q_fr=Q_fr, F=F, stride_fr=stride_fr,
                         out_type=out_type, format=format, **pnp_options)

    def build(self) -> None:
        """kymatio builds its filter banks here; pnp's are built (and checked) in ``__init__``."""

    def _check_runtime_args(self) -> None:
        """kymatio checks ``out_type`` / ``format`` / ``T`` / ``F`` here; pnp did in ``__init__``."""
        return None

    def scattering(self, x: torch.Tensor) -> torch.Tensor:
        """kymatio's name for :meth:`forward`."""
        return self(x)
