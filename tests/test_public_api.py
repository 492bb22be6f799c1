"""Snapshot of the public surface: a change here is an API change and belongs in CHANGELOG.md."""

import inspect

import initwise

EXPECTED = {
    "ActivationFacts", "ActivationSpec", "Check", "CheckRegistry", "Dataset", "Diagnosis", "Fans",
    "Finding", "InitReport", "Measurements", "Monitor", "SparseLinear", "__version__",
    "activation_facts", "apply", "data", "doctor", "fans", "gain", "graph", "init", "layer_type",
    "measure", "monitor", "nn", "register_activation", "register_check", "register_fix",
    "register_layer", "register_policy", "resolve_activation", "run_checks", "schemes", "state",
    "theory", "unregister_activation", "unregister_check", "unregister_layer",
}


def test_all_is_the_snapshot_and_every_name_exists():
    assert set(initwise.__all__) == EXPECTED
    for name in initwise.__all__:
        assert hasattr(initwise, name), name


def test_doctor_is_both_callable_and_a_package():
    assert callable(initwise.doctor)
    assert callable(initwise.doctor.register_check)
    assert "standard" in initwise.doctor.PRESETS


def test_main_signatures_are_stable():
    init = inspect.signature(initwise.init)
    for kw in ("loss", "policy", "target", "batches", "generator", "on_unknown"):
        assert init.parameters[kw].kind is inspect.Parameter.KEYWORD_ONLY, kw
    doc = inspect.signature(initwise.doctor.doctor)
    for kw in ("loss_fn", "optimizer", "checks", "on_unknown"):
        assert doc.parameters[kw].kind is inspect.Parameter.KEYWORD_ONLY, kw
    assert list(inspect.signature(initwise.gain).parameters)[:2] == ["activation", "mode"]
    ap = inspect.signature(initwise.apply)
    assert ap.parameters["policy"].default == "auto"


def test_theory_exports_every_function_of_its_api():
    for name in ("q_map", "fixed_point", "c_map", "chi_1", "phase", "edge_of_chaos",
                 "critical_line", "depth_scales", "max_trainable_depth", "propagate",
                 "jacobian_spectrum", "c_map_slope", "c_map_curvature"):
        assert callable(getattr(initwise.theory, name)), name


def test_lazy_table_covers_all_exactly():
    from initwise import _EXPORTS, _SUBPACKAGES

    assert set(_EXPORTS) | set(_SUBPACKAGES) | {"__version__"} == set(initwise.__all__)
    assert "init" in dir(initwise)


def test_registries_are_exported_with_keyword_only_options():
    reg = inspect.signature(initwise.register_activation)
    for kw in ("name", "fn", "overwrite"):
        assert reg.parameters[kw].kind is inspect.Parameter.KEYWORD_ONLY, kw
    lay = inspect.signature(initwise.register_layer)
    for kw in ("kind", "fans", "blocks", "plan", "calibrate", "unit_dim", "unit_axis",
               "overwrite"):
        assert lay.parameters[kw].kind is inspect.Parameter.KEYWORD_ONLY, kw
    assert initwise.layer_type(initwise.nn.SparseLinear(3, 2)).kind == "linear"
