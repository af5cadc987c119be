"""Names shared by the library and the ``pnp`` command, in a module without heavy imports, so
that ``pnp --help`` answers without importing torch.  The library modules that own these
concepts import them from here (``pnp.training.trainer``, ``pnp.data``)."""

from __future__ import annotations

#: training losses (``scrapl``: SCRAPL's random-path JTFS, :mod:`pnp.loss.scrapl`)
LOSSES = ("ploss", "pnp", "mss", "jtfs", "mrstft", "specl2", "scrapl")
#: losses that render the predicted sound at every step (the DDSP baselines)
SPECTRAL_LOSSES = ("mss", "jtfs", "mrstft", "specl2", "scrapl")
#: optimisers of a training run: Adam, or SGD behind SCRAPL's path-wise 𝒫-Adam and / or 𝒫-SAGA
#: (``--loss scrapl`` only, :mod:`pnp.training.pathwise`)
OPTIMIZERS = ("adam", "p-adam-saga", "p-adam", "p-saga")
#: the optimiser of each loss when none is given: SCRAPL's prescription for scrapl, else Adam
DEFAULT_SCRAPL_OPTIMIZER = "p-adam-saga"
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
STUDY_LOSSES = ("ploss", "pnp", "pnp-pretrained", "pnp-lm", "mrstft", "specl2", "mss", "jtfs", "scrapl", "scrapl-is")
STUDY_DEFAULT_LOSSES = ("ploss", "pnp", "pnp-pretrained", "mrstft", "specl2", "jtfs", "scrapl")
