"""initwise: initialization, diagnosis and theory that make neural networks learn on hard data.

The public surface is re-exported here explicitly; ``tests/test_public_api.py`` snapshots it.
"""

from initwise._version import __version__
from initwise.initreport import InitReport

__all__ = ["InitReport", "__version__"]
