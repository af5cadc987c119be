"""kymatio 0.4's torch JTFS frontend, computed by pnp: for a kymatio user, one import changes::

    from kymatio.torch import TimeFrequencyScattering                        # before
    from pnp.scattering.jtfs.kymatio_compat import TimeFrequencyScattering   # after

:class:`TimeFrequencyScattering` is pnp's :class:`~pnp.scattering.jtfs.TimeFrequencyScattering`
(kymatio 0.4's numbers, faster — README, "Coming from kymatio" —, every autodiff mode) with kymatio's constructor surface:
its ``backend`` / ``frontend`` arguments (``'torch'`` only), ``build()`` and
``create_filters()`` (kymatio builds its filters there; pnp has built them in ``__init__``),
``_check_runtime_args()`` and ``scattering(x)``.  As kymatio's: the attributes ``J, J_fr, Q,
Q_fr (a 1-tuple), T, F, stride, stride_fr, average, average_fr, out_type, format``; the
argument checks (lists for ``Q`` / ``Q_fr`` / ``shape`` refused with ValueError, ``Q`` of 3 or
``Q_fr`` of 2 NotImplementedError, kymatio's key phrases in the messages); ``meta()`` (keys
``order, n, j, xi, sigma, n_fr, j_fr, xi_fr, sigma_fr, spin, key``); ``out_type='list'`` /
``'dict'`` (format 'joint': the zeroth order first, each path's frequential rows unpadded);
``T=0`` (no time averaging: paths of different lengths, 'list' / 'dict' only); and
``out_type='array'`` with ``T=0``, or with format 'joint' and ``F=0``, builds the object and
raises kymatio's "Cannot convert ..." ValueError on the call and in ``_check_runtime_args()``.

Different on purpose (pnp's behaviour): the output follows the input's dtype and device;
``meta()`` lists paths in output order (kymatio sorts them by key); the list entries carry
the path's meta (``j``, ``xi``, ``sigma`` of both orders, scalar ``n_fr`` / ``j_fr``) instead
of kymatio's placeholders (``j = (-1,)``, 1-tuples); with ``T=0`` in format 'time' the
first-order channels are unpadded at the stride ``2**J`` of their samples (kymatio 0.4
unpads them at full resolution and returns them empty; its format 'joint' has the same
first-order values as pnp); format 'joint' with ``T='global'`` and out_type 'list' / 'dict'
works (kymatio 0.4 fails there on a reshape).  ``tests/test_kymatio_compat.py`` runs
kymatio's own test file against this class and compares values with kymatio 0.4.
"""

from __future__ import annotations

import torch

from pnp.scattering.jtfs.frontend import TimeFrequencyScattering as _PnpJTFS

BACKENDS = ("torch",)


class TimeFrequencyScattering(_PnpJTFS):
    """kymatio 0.4's ``TimeFrequencyScattering`` (torch frontend) on pnp's JTFS; see the module docs."""

    #: kymatio builds the object and refuses an impossible out_type='array' on the call
    _check_array_at_init = False

    def __init__(self, J, J_fr, Q, shape, T=None, stride=None, Q_fr=1, F=None, stride_fr=None, out_type="array",
                 format="time", backend="torch", frontend="torch", **pnp_options):
        for name, value in (("backend", backend), ("frontend", frontend)):
            if value is not None and getattr(value, "name", value) not in BACKENDS:
                raise ValueError(f"{name} must be 'torch' (pnp's JTFS is a torch module), got {value!r}")
        super().__init__(J=J, J_fr=J_fr, Q=Q, shape=shape, T=T, stride=stride, Q_fr=Q_fr, F=F, stride_fr=stride_fr,
                         out_type=out_type, format=format, **pnp_options)

    def build(self) -> None:
        """kymatio builds its filter banks here; pnp's are built (and checked) in ``__init__``."""

    def create_filters(self) -> None:
        """kymatio creates its filters here; pnp's are built in ``__init__``."""

    def _check_runtime_args(self) -> None:
        """kymatio's call-time checks: ``out_type='array'`` cannot be formed with ``T=0``, nor
        in format 'joint' with ``F=0`` (ValueError, kymatio's message). ``out_type`` and
        ``format`` themselves were checked in ``__init__``."""
        self._check_array_output()

    def scattering(self, x: torch.Tensor):
        """kymatio's name for :meth:`forward`."""
        return self(x)
