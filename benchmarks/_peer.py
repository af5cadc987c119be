"""The opening of the benchmarks' child scripts that run the peers (kymatio 0.4 bundled in the
scrapl-loss wheel, and scrapl itself): the bundled copy is also named ``kymatio``, so it goes
first on ``sys.path`` of a fresh process, where pnp's kymatio 0.3 is never imported.
(``tests/_peer.py`` is the tests' copy: the benchmarks do not import the tests.)"""

BUNDLED_KYMATIO = """import importlib.util, json, logging, os, sys, time
import numpy as np
spec = importlib.util.find_spec("scrapl")
sys.path.insert(0, os.path.join(list(spec.submodule_search_locations)[0], "kymatio"))
"""
