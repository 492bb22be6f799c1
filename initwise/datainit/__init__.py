"""Data-aware initialization: ``initwise.init(model, data)``.

A scheme computes a layer's scale from its shape; on special data (hashed bag-of-words, CTR
categoricals, badly scaled tabular columns) the shape says little. :func:`init` runs the
structural policy (:func:`initwise.policy.apply`: which distribution each parameter gets), traces
the model (:func:`initwise.graph.trace`: execution order, the activation after each layer,
norms, residual branches, the output layer), and then *measures* a few real batches, layer by
layer in execution order, with forward hooks. The rules, and why:

1. **Dense data layers see standardized inputs** (an ``nn.Linear`` / ungrouped ``ConvNd`` fed
   directly by a dense model input). When the columns are badly scaled -- some non-constant
   column with a std outside ``COL_STD_RANGE`` = [0.1, 10] or a mean beyond ``COL_MEAN_STDS`` = 3
   stds from 0, measured on the calibration batches -- the layer gets an input standardization
   ``x -> (x - m) / s`` (:func:`initwise.nn.add_input_standardization`: two persistent buffers,
   ``initwise_input_shift`` and ``initwise_input_inv_scale``, and a forward pre-hook), so training
   *is* training on standardized columns: what the forgotten preprocessing would have done
   (FINDINGS 4). Folding ``1/s_j`` into the trainable weights, the first version of this rule,
   fixed only the first forward: the optimizer then stepped on weights whose useful scales
   differed by up to 1e9 (one Adam step took the loss from 2.5 to 1.2e6, SGD gave NaN, a 24-layer
   tanh net stalled at 62.6 % vs 98 % on standardized data). The report says what was added and
   how to remove it (:func:`initwise.nn.bake_input_standardization` folds it into
   ``weight``/``bias`` for export; ``remove_input_standardization`` drops it); the buffers are in
   ``state_dict``, survive ``copy.deepcopy`` and ``torch.save``. Columns within those bounds are
   only folded (``W[:, j] /= s_j``, ``b -= W' m``: at most a 10x conditioning change, no new
   state). Sparse and lookup layers never get it. Then rule 3 with target RMS 1.
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
   arXiv:2002.10444), without freezing the branch at zero. An attention branch counts and is
   scaled the same way, through its output projection (``nn.MultiheadAttention.out_proj``):
   left at its structural scale it was ~3x the FFN branch, and the post-LN
   ``nn.TransformerEncoder`` of ``benchmarks/real_models.py`` trained to 0.037 held-out loss
   instead of torch's default's 0.008 (0.008 with the branch scaled; AdamW, 200 steps, 5 seeds).
5. **Norms are not fought**: a layer followed by BatchNorm/LayerNorm/... keeps its structural
   scale (the norm sets it), only dead units are fixed.
6. **No dead or saturated units**: a ReLU-family unit never active on any calibration sample is
   re-centred (bias = minus its mean: active on about half the samples, as BatchNorm would make
   it) or, without a bias, its weights' sign is flipped (the distribution is symmetric, so this
   is another draw of the same law); a unit with constant output is re-drawn. In a layer whose
   units come in looks-linear pairs (``z``, ``-z``: :mod:`initwise.policy._mirror`) a pair with
   a dead unit is re-centred as a pair (biases ``-m`` and ``+m``), so the pairs and the chain's
   linearity at init survive calibration. A tanh/sigmoid unit
   saturated (slope < 10 % of its maximum) on most samples is re-centred or shrunk.
7. **Robust**: a layer whose whole output is constant (zero weights, collapsed input) is re-drawn
   ``N(0, 1/fan_in)`` once -- never multiplied by a huge factor; each layer stops at ``tol`` or
   after ``max_iters`` adjustments with a warning naming it; a tied weight is calibrated at its
   first use only (ties are kept: parameters are changed in place); recurrent and custom
   modules keep their structural init and are reported per ``on_unknown``, and so do attention
   modules' queries, keys and values (their output projection follows rule 4).
8. **Output = label prior**: the head's bias is the log prior (cross-entropy), per-label log-odds
   (BCE) or the target mean (MSE), minus the mean of the weight part of the logits, so the
   initial loss is the label-prior loss (:func:`initwise.modelio.label_prior_loss`). The head
   keeps the body's scale (a shrunken head slows learning, FINDINGS 1) unless its fluctuation
   costs more than ``LOSS_BUDGET`` (0.5 %) of that loss; then it is shrunk just enough. Logits come
   from tuples, dicts and Hugging Face outputs (:func:`initwise.modelio.extract_logits`;
   the report says which), and LM-shaped targets ``(batch, seq)`` work. Two guards: labels
   that look unrepresentative (cross-entropy: one class seen by a wider head, or batches that
   each hold nearly one class -- mean within-batch label entropy below ``SORTED_ENTROPY`` = 1/4
   of the pooled entropy, the mark of a class-sorted loader) get the uniform prior over the
   head's classes and a warning (a class-sorted loader took a 3-class full-data CE from 1.10 to
   4.47 with that class's prior); and a label-prior head that ends above both the head it
   replaced and the prior band is not kept (warned): the calibration loss then stays what the
   structural head gave. The head still lands at the prior when a random head was *below* it
   by luck (see ``LOSS_BUDGET`` in ``_output``).

Under ``policy="respect"`` -- what ``"auto"`` means for a healthy model of a library whose
authors tuned its init (transformers, timm, torchvision; :mod:`initwise.autoinit`) -- rules 1-7
give way to one pass that keeps every scale and changes only what it measures as wrong: a
sparse input table (rule 2), badly scaled raw inputs (rule 1's standardization), dead or
saturated units (rule 6, by their bias only), and the head (rule 8) unless it already starts
within 5 % of the prior, has no bias, or reads collapsed features
(:mod:`initwise.datainit._respect`, ``RESPECT_PRIOR_TOLERANCE``, ``COLLAPSED_LOGITS``).

Refused, before anything changes (``ValueError``/``TypeError`` naming the batch, the cell or
layer, and the remedy; :func:`initwise.modelio.check_batch`, ``forward_context``): a NaN/Inf
input cell (dense, ``torch.sparse`` COO/CSR and ``scipy.sparse`` through their stored values,
never densified) or target; a batch of 0 rows or of 1 row (``MIN_ROWS`` = 2); labels outside
``[0, C)`` or all equal to the ignore index -100; a feature/channel count the first layer does
not take, ids beyond an embedding table, inputs of a dtype the parameters do not have; lazy or
meta-device models; a path (read it with :func:`initwise.data.load`) or a numpy object array.
Warned: a dict output without ``"logits"`` (the key used is named), one-hot float labels (BCE
inferred; pass integer labels for CE), layers the walk does not calibrate (one grouped warning).
Custom buffers the model's forward updates (a step counter, an EMA) are restored after the
calibration forwards; only the buffers init adds on purpose (the input standardization) stay.

Cost: the model is traced once (:func:`initwise.graph.trace`, whose bitwise restore check skips
large parameters: they are version-checked) and that graph is passed to
:func:`initwise.policy.apply`, which runs without its own snapshot (``atomic=False``: the guard of
:func:`init` covers it). What remains on a 2^18 x 64 table is drawing it and one snapshot copy.

Execution: calibrating layer ``k`` runs the batches only up to layer ``k`` (the forward is cut
by a hook). Forwards run in ``eval`` mode (dropout off: deterministic and no global RNG draws)
with batch-statistic norms in ``train`` mode, so they normalize as they will in training; their
running buffers are restored. Atomic: on any error the model is restored bitwise (values,
``requires_grad``, train/eval modes; an input standardization added meanwhile is removed); hooks
are always removed; the caller's global RNG state is restored; the same ``generator`` seed gives
the same bits.

Distributed: under an initialized ``torch.distributed`` group every statistic is all-reduced
(sums with ``SUM``, maxima with ``MAX``), so the global calibration batch decides and every rank
takes the same decisions; a ``None`` generator's seed is rank 0's; finally rank 0's parameters
and buffers are broadcast as a safety net, so all ranks end bit-identical.
"""

from initwise.datainit._api import CRITICAL_SIGMA_B, TARGETS, init
from initwise.datainit._output import LOSS_BUDGET
from initwise.datainit._walk import COL_MEAN_STDS, COL_STD_RANGE

__all__ = ["COL_MEAN_STDS", "COL_STD_RANGE", "CRITICAL_SIGMA_B", "LOSS_BUDGET", "TARGETS", "init"]
