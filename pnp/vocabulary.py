"""Names shared by the library and the ``pnp`` command, in a module without heavy imports, so
that ``pnp --help`` answers without importing torch.  The library modules that own these
concepts import them from here (``pnp.training.trainer``, ``pnp.data``)."""

from __future__ import annotations

#: training losses
LOSSES = ("ploss", "pnp", "mss", "jtfs", "mrstft", "specl2")
#: losses that render the predicted sound at every step (the DDSP baselines)
SPECTRAL_LOSSES = ("mss", "jtfs", "mrstft", "specl2")
#: damping (λ) schedules of the PNP loss
SCHEDULE_NAMES = ("constant", "decay", "lm", "adaptive")
#: ``lam`` of the adaptive schedule computed from the store: (largest stored eigenvalue of M over
#: the training split)², the PNP authors' λ₀
LAM0_AUTO = "max-eig-squared"
#: encoders
ENCODER_KINDS = ("scalogram", "effnet-cqt")
#: damping matrices D of the PNP loss
DAMPING_NAMES = ("identity", "diag", "mean")
#: devices a command may ask for (defined with the device rule, :mod:`pnp.devices`, torch-free)
from pnp.devices import DEVICES  # noqa: E402,F401

#: training-set orders: shuffled chunks, or i.i.d. samples
SHUFFLES = ("chunks", "samples")
#: the PNP study's loss variants and its default selection (``pnp.pipelines.study.VARIANTS`` /
#: ``DEFAULT_LOSSES``, repeated here for ``pnp study --help``; tests/test_cli.py checks they agree)
STUDY_LOSSES = ("ploss", "pnp", "pnp-pretrained", "pnp-lm", "mrstft", "specl2", "mss", "jtfs")
STUDY_DEFAULT_LOSSES = ("ploss", "pnp", "pnp-pretrained", "mrstft", "specl2", "jtfs")
