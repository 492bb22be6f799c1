"""Published dead-unit remedies, written from their papers for ``benchmarks/repair.py``.

* :class:`ReDo` -- Sokar, Agarwal, Castro, Evci, "The Dormant Neuron Phenomenon in Deep
  Reinforcement Learning", ICML 2023, arXiv:2302.12902.
* :class:`ContinualBackprop` -- Dohare, Hernandez-Garcia, Lan, Rahman, Mahmood, Sutton, "Loss
  of plasticity in deep continual learning", Nature 632, 2024, arXiv:2306.13812.
* :class:`ShrinkPerturb` -- Ash, Adams, "On Warm-Starting Neural Network Training", NeurIPS
  2020, arXiv:1910.08475.

All three act on a plain ``nn.Sequential`` of ``[Linear | SparseLinear, ReLU, Linear, ReLU, ...,
Linear]`` (:func:`hidden_layers`); nothing here is copied from their code bases.

Peer initializers, written from their papers for the issue-16 benchmark families; each has the
signature ``init_fn(model, batches, *, loss_fn, seed, **budget) -> PeerResult`` (``_cost.py``:
forward / backward passes and wall time) and lists its deviations from its reference:

* ``gradinit.gradinit`` -- GradInit's loop (Zhu et al. 2021, arXiv:2102.08098);
* ``metainit.metainit`` -- MetaInit (Dauphin & Schoenholz, NeurIPS 2019);
* ``fixup.fixup_init``, ``fixup.skipinit`` / ``fixup.rezero`` -- Fixup (arXiv:1901.09321),
  SkipInit (arXiv:2002.10444), ReZero (arXiv:2003.04887), on ``fixup.ResidualNet``;
* ``tfixup.tfixup_init`` -- T-Fixup (Huang et al., ICML 2020), on ``tfixup.TinyTransformer``;
* ``zeroinit.zero_init`` -- ZerO (Zhao et al., arXiv:2110.12661);
* ``packages`` -- the pinned ``lsuv`` 0.3.0, ``gradinit`` 0.1.1, ``dks`` 0.1.2 and ``zero-init``
  0.3, called as their READMEs say (``dks``'s sampler on the transposed weight: see there).
"""

from peers._units import Hidden, hidden_layers
from peers.cbp import ContinualBackprop
from peers.redo import ReDo
from peers.shrink_perturb import ShrinkPerturb

__all__ = ["ContinualBackprop", "Hidden", "ReDo", "ShrinkPerturb", "hidden_layers"]
