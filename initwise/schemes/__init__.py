"""Tensor-level init schemes: fill ONE tensor in place, ``name_(tensor, ..., generator=None)``.

Every scheme runs under ``torch.no_grad()``, returns the tensor and draws only from
``generator``. Where ``torch.nn.init`` defines the same scheme, the signature is the same and the
bits are the same for the same generator (``uniform_``, ``normal_``, ``trunc_normal_``,
``constant_``, ``zeros_``, ``ones_``, ``eye_``, ``dirac_``, ``xavier_*``, ``kaiming_*``,
``orthogonal_``), so ``initwise.schemes`` is a drop-in replacement. Fan-based schemes take a
keyword-only ``fans=`` override (see :mod:`initwise.schemes.fans`).

Two truncated normals, on purpose: ``trunc_normal_`` is torch's (absolute bounds, std before
truncation); ``trunc_normal_keras_`` and ``variance_scaling_(distribution="truncated_normal")``
are Keras' (truncate at +-2 std, std corrected so the variance after truncation is the requested
one). ``he_*``/``glorot_*`` are aliases of torch's ``kaiming_*``/``xavier_*`` (untruncated), not of
Keras' truncated ``he_normal``. ``sparse_`` is Martens' count-based scheme, NOT torch's
fraction-based ``torch.nn.init.sparse_``. ``zero_`` is ZerO (Zhao et al. 2022); ``zeros_`` fills 0.
Activation gains live in :mod:`initwise.schemes.gains`.
"""

from initwise.schemes.basic import (
    KERAS_TRUNCATION_STD,
    constant_,
    normal_,
    ones_,
    scale_,
    scale_to_std_,
    trunc_normal_,
    trunc_normal_keras_,
    uniform_,
    zeros_,
)
from initwise.schemes.fans import Block, Fans, blocks, fans, tensor_fans
from initwise.schemes.orthogonal import (
    delta_orthogonal_,
    dirac_,
    eye_,
    hadamard,
    identity_,
    orthogonal_,
    zero_,
)
from initwise.schemes.sparse import sparse_
from initwise.schemes.variance import (
    TORCH_NONLINEARITIES,
    glorot_normal_,
    glorot_uniform_,
    he_normal_,
    he_uniform_,
    kaiming_normal_,
    kaiming_uniform_,
    lecun_normal_,
    lecun_uniform_,
    resolve_gain,
    variance_scaling_,
    xavier_normal_,
    xavier_uniform_,
)

__all__ = [
    "KERAS_TRUNCATION_STD",
    "TORCH_NONLINEARITIES",
    "Block",
    "Fans",
    "blocks",
    "constant_",
    "delta_orthogonal_",
    "dirac_",
    "eye_",
    "fans",
    "glorot_normal_",
    "glorot_uniform_",
    "hadamard",
    "he_normal_",
    "he_uniform_",
    "identity_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "lecun_normal_",
    "lecun_uniform_",
    "normal_",
    "ones_",
    "orthogonal_",
    "resolve_gain",
    "scale_",
    "scale_to_std_",
    "sparse_",
    "tensor_fans",
    "trunc_normal_",
    "trunc_normal_keras_",
    "uniform_",
    "variance_scaling_",
    "xavier_normal_",
    "xavier_uniform_",
    "zero_",
    "zeros_",
]
