"""Mean-field signal propagation for any activation (numpy/scipy, float64; never imports torch).

A framework-free core in the spirit of DeepMind's ``dks``: every function takes ``activation`` as
a registered name (``"tanh"``, ``"relu"``, ``"gelu"``...), an :class:`Activation`, an
``initwise.activations.ActivationSpec`` (the torch bridge's resolved form) or a float64 numpy
callable, plus ``sigma_w``/``sigma_b`` (standard deviations of ``W_ij * sqrt(fan_in)`` and of the
biases). Kinks are integrated exactly (:mod:`initwise.theory.quadrature`).

References:
    Poole et al. 2016, arXiv:1606.05340; Schoenholz et al. 2017, arXiv:1611.01232;
    Pennington, Schoenholz & Ganguli 2017, arXiv:1711.04735; Hayou et al. 2019,
    arXiv:1902.06853; Martens et al. 2021, arXiv:2110.01765; Zhang et al. 2022,
    arXiv:2203.08120.
"""

from initwise.theory.activations import (
    Activation,
    from_callable,
    get_activation,
    known_activations,
    register_activation,
)
from initwise.theory.cmaps import c_map_curvature, c_map_slope, normalizing_sigma_w
from initwise.theory.correlation import c_map, c_map_derivative
from initwise.theory.criticality import (
    CriticalLine,
    CriticalPoint,
    critical_line,
    critical_point,
    edge_of_chaos,
)
from initwise.theory.depth import (
    DepthScales,
    Propagation,
    correlation_fixed_point,
    depth_scales,
    max_trainable_depth,
    propagate,
)
from initwise.theory.maps import (
    FixedPoint,
    chi_1,
    derivative_moment,
    fixed_point,
    phase,
    q_map,
    q_map_slope,
    second_moment,
)
from initwise.theory.spectrum import JacobianSpectrum, jacobian_spectrum
from initwise.theory.summary import format_theory_summary, theory_summary

__all__ = [
    "Activation",
    "CriticalLine",
    "CriticalPoint",
    "DepthScales",
    "FixedPoint",
    "JacobianSpectrum",
    "Propagation",
    "c_map",
    "c_map_curvature",
    "c_map_derivative",
    "c_map_slope",
    "chi_1",
    "correlation_fixed_point",
    "critical_line",
    "critical_point",
    "depth_scales",
    "derivative_moment",
    "edge_of_chaos",
    "fixed_point",
    "format_theory_summary",
    "from_callable",
    "get_activation",
    "jacobian_spectrum",
    "known_activations",
    "max_trainable_depth",
    "normalizing_sigma_w",
    "phase",
    "propagate",
    "q_map",
    "q_map_slope",
    "register_activation",
    "second_moment",
    "theory_summary",
]
