"""Each check fires on its crafted zoo case and is silent on healthy setups."""

import warnings

import pytest
import zoo_cases as zoo

from initwise.doctor import doctor

BROKEN = [
    "sparse_bag_default_init", "sparse_dense_layout_unit", "tanh30_chaotic_sw3",
    "tanh30_ordered_sw05", "relu_negative_bias", "unscaled_tabular", "nan_feature",
    "logits_x100", "wrong_loss_mse_on_binary", "unused_branch", "exploding_lr_sgd", "zero_lr",
    "bf16_underflow", "label_imbalance_99_1", "bce_rare_positive", "torch_default_deep10",
    "relu_exploding_gain", "positive_bias_collapse", "uncentered_inputs", "constant_features",
    "sigmoid_saturated", "mse_raw_targets", "dead_cnn", "nan_weight",
    "tanh20_ordered_bias_theory", "sigmoid15_vanishing_grad", "exploding_lr_adam",
    "cnn_raw_pixels_0_255", "head_replaced_after_optimizer",
]
HEALTHY = [
    "mlp_kaiming", "mlp_deep12_kaiming", "tanh_xavier_6", "cnn_batchnorm",
    "transformer_encoder", "lstm", "residual_mlp", "embedding_model", "sparse_bag_kaiming",
    "binary_bce", "tabular_standardized", "dict_io_silu", "fixup_residual_zero_branch",
    "zero_init_head", "mlp_deep20_batch32", "gru_regression",
]


def _run(setup, preset):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return doctor(setup.model, setup.batch, optimizer=setup.optimizer,
                      loss_fn=setup.loss_fn, checks=preset)


@pytest.mark.parametrize("name", BROKEN)
def test_planted_pitfall_is_found(name):
    fn, expected, preset = zoo.BROKEN[name]
    d = _run(fn(0), preset)
    assert expected <= d.codes_at("error", "warning"), d.plain_text()


@pytest.mark.parametrize("name", HEALTHY)
def test_healthy_setup_has_no_warning(name):
    fn, preset = zoo.HEALTHY[name]
    d = _run(fn(1), preset)
    assert d.ok, d.plain_text()
    d.raise_for_errors(warnings=True)


def test_deep_sigmoid_chain_promises_no_init_fix():
    fn, _, preset = zoo.BROKEN["sigmoid15_vanishing_grad"]
    d = _run(fn(0), preset)
    depth = [f for f in d.findings if f.check.startswith(("signal.", "grad."))]
    assert depth and not any(f.automatic for f in depth)
    assert all("sigmoid" in f.fix for f in depth)
