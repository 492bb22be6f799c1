"""Published dead-unit remedies, written from their papers for ``benchmarks/repair.py``.

* :class:`ReDo` -- Sokar, Agarwal, Castro, Evci, "The Dormant Neuron Phenomenon in Deep
  Reinforcement Learning", ICML 2023, arXiv:2302.12902.
* :class:`ContinualBackprop` -- Dohare, Hernandez-Garcia, Lan, Rahman, Mahmood, Sutton, "Loss
  of plasticity in deep continual learning", Nature 632, 2024, arXiv:2306.13812.
* :class:`ShrinkPerturb` -- Ash, Adams, "On Warm-Starting Neural Network Training", NeurIPS
  2020, arXiv:1910.08475.

All three act on a plain ``nn.Sequential`` of ``[Linear | SparseLinear, ReLU, Linear, ReLU, ...,
Linear]`` (:func:`hidden_layers`); nothing here is copied from their code bases.
"""

from peers._units import Hidden, hidden_layers
from peers.cbp import ContinualBackprop
from peers.redo import ReDo
from peers.shrink_perturb import ShrinkPerturb

__all__ = ["ContinualBackprop", "Hidden", "ReDo", "ShrinkPerturb", "hidden_layers"]
