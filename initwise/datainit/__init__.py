"""Data-aware initialization: ``initwise.init(model, data)``.

A scheme computes a layer's scale from its shape; on special data (hashed bag-of-words, CTR
categoricals, badly scaled tabular columns) the shape says little. :func:`init` runs the
structural policy (:func:`initwise.policy.apply`: which distribution each parameter gets), traces
the model (:func:`initwise.graph.trace`: execution order, the activation after each layer,
norms, residual branches, the output layer), and then *measures* a few real batches, layer by
layer in execution order, with forward hooks. The rules, and why:

1. **Dense data layers are standardized** (a layer fed directly by a dense model input): column
   ``j``'s weights are divided by that column's std ``s_j`` and the centering is folded into the
   bias (``b -= W' m``), so the layer computes on raw ``x`` exactly what it would on
   ``(x - m) / s`` -- what the forgotten preprocessing would have done (FINDINGS 4: raw columns
   up to 1.5e9 make every standard init learn nothing). Then rule 3 with target RMS 1. Folding
   fixes the forward pass, not the optimizer: a step still moves the pre-activation by about
   ``lr * sum_j |x_j|`` on raw columns, so the report warns when column scales span more than
   two orders of magnitude and tells the user to standardize the data.
2. **Sparse and lookup data layers keep a small scale** (``SparseLinear`` / ``Linear`` on
   ``torch.sparse``, ``Embedding``, ``EmbeddingBag`` with the bag sizes and per-sample weights
   actually seen): weight std ``gain / sqrt(n_rows)`` -- the fan-in rule counting every row of
   the table (every possible feature), whatever the structural policy drew. The effective
   fan-in ``E_rows[sum_j x_j^2]`` is measured from the stored values only (O(nnz)) and reported;
   the pre-activation RMS is ``gain * sqrt(E[sum_j x_j^2] / n_rows)``, capped at ``gain`` when
   raw values are so large that it would exceed a dense layer's. It is deliberately *not*
   lifted to unit variance: on sparse text that loses 39 % vs 62 % test accuracy (FINDINGS 1),
   because each example then becomes a sum of large random rows of rare features, noise that a
   feature seen a few times per epoch cannot unlearn; our own runs
   (``benchmarks/datainit_choose.py``, figures in its docstring) found unit variance, and
   values normalized to unit RMS (x 1/3.75 on stdlib text), both slower than this rule. The
   measured RMS of this layer becomes the body's scale ``rho``.
3. **Hidden layers preserve the body's scale**: each layer's weight is scaled so its
   pre-activation RMS (over all calibration samples, positions and units, bias part relative
   to the structural bias) equals ``rho`` (1 behind dense inputs): LSUV (Mishkin & Matas 2015,
   arXiv:1511.06422) with the target set by the data layer rather than fixed at 1, i.e. Kaiming
   measured on the actual data (Krähenbühl et al. 2015, arXiv:1511.06856). ``target="unit"``
   is plain LSUV; ``target="critical"`` aims at ``sqrt(q*)``, the fixed point of the layer's
   activation at the edge of chaos (Poole et al. 2016, arXiv:1606.05340; Schoenholz et al.
   2017, arXiv:1611.01232) from :mod:`initwise.theory`.
4. **Residual branches are down-scaled**: without normalization ``x + f(x)`` doubles the
   variance per block. A layer whose output is added to a skip path (``residual`` in the graph)
   aims at ``rho / sqrt(L)`` for ``L`` residual branches, so the stream grows by at most a factor
   ``(1 + 1/L)^L <= e`` in variance over the whole depth: the data-calibrated form of Fixup's
   branch scaling (Zhang et al. 2019, arXiv:1901.09321) and SkipInit (De & Smith 2020,
   arXiv:2002.10444), without freezing the branch at zero.
5. **Norms are not fought**: a layer followed by BatchNorm/LayerNorm/... keeps its structural
   scale (the norm sets it), only dead units are fixed.
6. **No dead or saturated units**: a ReLU-family unit never active on any calibration sample is
   re-centred (bias = minus its mean: active on about half the samples, as BatchNorm would make
   it) or, without a bias, its weights' sign is flipped (the distribution is symmetric, so this
   is another draw of the same law); a unit with constant output is re-drawn. A tanh/sigmoid unit
   saturated (slope < 10 % of its maximum) on most samples is re-centred or shrunk.
7. **Robust**: a layer whose whole output is constant (zero weights, collapsed input) is re-drawn
   ``N(0, 1/fan_in)`` once -- never multiplied by a huge factor; each layer stops at ``tol`` or
   after ``max_iters`` adjustments with a warning naming it; a tied weight is calibrated at its
   first use only (ties are kept: parameters are changed in place); recurrent, attention and
   custom modules keep their structural init and are reported per ``on_unknown``.
8. **Output = label prior**: the head's bias is the log prior (cross-entropy), per-label log-odds
   (BCE) or the target mean (MSE), minus the mean of the weight part of the logits, so the
   initial loss is the label-prior loss (:func:`initwise.modelio.label_prior_loss`). The head
   keeps the body's scale (a shrunken head slows learning, FINDINGS 1) unless its fluctuation
   costs more than ``LOSS_BUDGET`` (0.5 %) of that loss; then it is shrunk just enough. Logits come
   from tuples, dicts and Hugging Face outputs (:func:`initwise.modelio.extract_logits`;
   the report says which), and LM-shaped targets ``(batch, seq)`` work.

Execution: calibrating layer ``k`` runs the batches only up to layer ``k`` (the forward is cut
by a hook). Forwards run in ``eval`` mode (dropout off: deterministic and no global RNG draws)
with batch-statistic norms in ``train`` mode, so they normalize as they will in training; their
running buffers are restored. Atomic: on any error the model is restored bitwise (values,
``requires_grad``, train/eval modes); hooks are always removed; the caller's global RNG state is
restored; the same ``generator`` seed gives the same bits.

Distributed: under an initialized ``torch.distributed`` group every statistic is all-reduced
(sums with ``SUM``, maxima with ``MAX``), so the global calibration batch decides and every rank
takes the same decisions; a ``None`` generator's seed is rank 0's; finally rank 0's parameters
and buffers are broadcast as a safety net, so all ranks end bit-identical.
"""

from initwise.datainit._api import CRITICAL_SIGMA_B, TARGETS, init
from initwise.datainit._output import LOSS_BUDGET

__all__ = ["CRITICAL_SIGMA_B", "LOSS_BUDGET", "TARGETS", "init"]
