"""MODEL specs, weights and --model-kwargs (initwise._loading), in-process."""

from __future__ import annotations

import sys

import pytest
import torch
from torch import nn

from initwise._loading import (
    LoadError,
    _split_spec,
    load_model,
    load_weights,
    parse_model_kwargs,
)


@pytest.mark.parametrize("spec,expected", [
    ("model.py:mlp", ("model.py", "mlp")),
    ("dir/sub/model.py:make", ("dir/sub/model.py", "make")),
    ("pkg.mod:factory", ("pkg.mod", "factory")),
    ("model.pt", ("model.pt", None)),
    ("C:\\models\\m.pt", ("C:\\models\\m.pt", None)),
    ("model.py", ("model.py", None)),
])
def test_split_spec(spec, expected):
    assert _split_spec(spec) == expected


def test_model_kwargs_parsing():
    assert parse_model_kwargs(None) == {} and parse_model_kwargs("") == {}
    assert parse_model_kwargs('{"depth": 12, "act": "tanh"}') == {"depth": 12, "act": "tanh"}
    with pytest.raises(LoadError, match="not valid JSON"):
        parse_model_kwargs("{depth: 12}")
    with pytest.raises(LoadError, match="expected a JSON object, got int"):
        parse_model_kwargs("12")


def test_file_factory_with_kwargs_and_package_factory(work, monkeypatch):
    model = load_model(str(work / "model.py") + ":mlp", {"depth": 3, "width": 8})
    assert [m.out_features for m in model if isinstance(m, nn.Linear)] == [8, 8, 8, 3]
    pkg = work / "zoo_pkg"
    pkg.mkdir(exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "models.py").write_text(
        "from torch import nn\n\ndef tiny(n=3):\n    return nn.Linear(4, n)\n")
    monkeypatch.syspath_prepend(str(work))
    assert load_model("zoo_pkg.models:tiny", {"n": 5}).out_features == 5
    sys.modules.pop("zoo_pkg.models", None)
    sys.modules.pop("zoo_pkg", None)


def test_archives_torchscript_and_export(work, tmp_path):
    net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)).eval()
    x = torch.randn(5, 4)
    torch.jit.save(torch.jit.script(net), tmp_path / "m.pt")
    torch.export.save(torch.export.export(net, (x,)), tmp_path / "m.pt2")
    assert torch.equal(load_model(str(tmp_path / "m.pt"))(x), net(x))
    assert torch.allclose(load_model(str(tmp_path / "m.pt2"))(x), net(x))
    (tmp_path / "bad.pt2").write_bytes(b"not a zip")
    with pytest.raises(LoadError, match="is not a torch.export archive"):
        load_model(str(tmp_path / "bad.pt2"))
    with pytest.raises(LoadError, match="only a factory takes keyword arguments"):
        load_model(str(tmp_path / "m.pt"), {"depth": 2})


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_weights_load_with_weights_only(tmp_path):
    net = nn.Linear(4, 2)
    torch.save({"state_dict": net.state_dict()}, tmp_path / "ckpt.pt")  # Lightning-style
    other = nn.Linear(4, 2)
    load_weights(other, str(tmp_path / "ckpt.pt"))
    assert torch.equal(other.weight, net.weight)
    from safetensors.torch import save_file

    save_file(net.state_dict(), str(tmp_path / "w.safetensors"))
    third = nn.Linear(4, 2)
    load_weights(third, str(tmp_path / "w.safetensors"))
    assert torch.equal(third.bias, net.bias)
    torch.save({"weight": _Evil()}, tmp_path / "evil.pt")
    with pytest.raises(LoadError, match="cannot read"):
        load_weights(nn.Linear(4, 2), str(tmp_path / "evil.pt"))
    with pytest.raises(LoadError, match="does not fit the model"):
        load_weights(nn.Linear(5, 2), str(tmp_path / "w.safetensors"))
