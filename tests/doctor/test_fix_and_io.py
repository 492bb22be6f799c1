"""Automatic fixes clear their codes; model outputs and targets of real-world shapes work."""

import math
import warnings

import pytest
import torch
import zoo_cases as zoo
from torch import nn

from initwise.doctor import doctor


@pytest.mark.parametrize("name", ["unscaled_tabular", "relu_negative_bias", "logits_x100"])
def test_fix_clears_the_fixed_codes(name):
    pytest.importorskip("initwise.datainit")
    fn, expected, preset = zoo.BROKEN[name]
    s = fn(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = doctor(s.model, s.batch, checks=preset)
        fixed = {f.check for f in d.findings if f.automatic}
        assert expected <= fixed
        d.fix(s.model, s.batch)
        after = doctor(s.model, s.batch, checks=preset)
    assert not (fixed & after.codes_at("error", "warning")), after.plain_text()


class TinyLM(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(50, 16)
        self.proj = nn.Linear(16, 50)
        self.proj.weight = self.emb.weight  # tied

    def forward(self, input_ids):
        return {"logits": self.proj(torch.tanh(self.emb(input_ids))), "aux": 0}


def test_language_model_targets_and_dict_output():
    ids = torch.randint(0, 50, (8, 12), generator=torch.Generator().manual_seed(0))
    m = TinyLM()
    d = doctor(m, {"input_ids": ids, "labels": ids}, checks="standard")
    assert d.summary["loss_kind"] == "ce"
    assert d.summary["output"]["source"] == "output['logits']"
    assert m.proj.weight is m.emb.weight
    assert "grad.none" not in d.codes


def test_large_vocabulary_on_small_batch_is_not_a_mismatch():
    class LM(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.emb = nn.Embedding(20000, 32)
            self.ln = nn.LayerNorm(32)
            self.head = nn.Linear(32, 20000)

        def forward(self, ids):
            return self.head(self.ln(self.emb(ids)))

    ids = torch.randint(0, 20000, (4, 16), generator=torch.Generator().manual_seed(1))
    d = doctor(LM(), (ids, ids), checks="quick")
    assert d.summary["label_prior_loss"] == pytest.approx(math.log(20000))
    assert "loss.init_mismatch" not in d.codes
