"""One way to look at a model: layer facts, probes, streaming statistics, measurement records.

The doctor, :func:`initwise.init` and the training monitor share this core:

* :class:`LayerFacts` -- every layer's kind, unit dimension, weight/bias, the activation that
  follows it and where it is measured, norm/residual/output flags; built once from the graph
  (:func:`layer_facts`);
* :func:`probe` -- a context manager that hooks the layers for one block (the doctor's pass, a
  calibration forward, the user's own training forward) and always removes its hooks;
* :class:`UnitStats` (+ :class:`ColumnStats`, :class:`SparseInputStats`) -- mergeable,
  all-reducible float64 sums, O(#units) memory, sparse inputs never densified;
* :class:`Measurements` -- the frozen record every check reads, filled by :func:`measure` (a
  pass of its own) or :func:`from_training_step` (a live step: ``.grad`` as filled by the user's
  backward, the update the optimizer really made, via :class:`UpdateTracker`).

Example:
    >>> import torch
    >>> from torch import nn
    >>> from initwise.measure import layer_facts, probe
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> x = torch.randn(16, 4, generator=torch.Generator().manual_seed(0))
    >>> facts, source = layer_facts(net, x)
    >>> with probe(net, facts) as p:
    ...     _ = net(x)
    >>> source, p.order, p.stats["0"].units, facts["0"].act.name
    ('graph', ['0', '2'], 8, 'relu')
"""

from initwise.measure.data import DataProfile, profile_inputs
from initwise.measure.facts import (
    LayerFacts,
    facts_from_graph,
    layer_facts,
    own_bias,
    own_weight,
    structural_facts,
    unit_dim,
)
from initwise.measure.passes import UpdateTracker, from_training_step, measure, update_stats
from initwise.measure.probe import LOOKUP_KINDS, Probe, StopForward, probe, run_forward
from initwise.measure.record import NEEDS, LayerStats, Measurements
from initwise.measure.stats import (
    ColumnStats,
    SparseInputStats,
    UnitStats,
    all_reduce_sum,
    dist_active,
    sparse_values,
)

__all__ = [
    "LOOKUP_KINDS", "NEEDS", "ColumnStats", "DataProfile", "LayerFacts", "LayerStats",
    "Measurements", "Probe", "SparseInputStats", "StopForward", "UnitStats", "UpdateTracker",
    "all_reduce_sum", "dist_active", "facts_from_graph", "from_training_step", "layer_facts",
    "measure", "own_bias", "own_weight", "probe", "profile_inputs", "run_forward", "sparse_values",
    "structural_facts", "unit_dim", "update_stats",
]
