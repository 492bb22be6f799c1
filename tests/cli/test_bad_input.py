"""Every bad-input case of issue 6: one clear line naming the problem and the remedy, exit 3.

The missing file, the unknown preset, the factory that raises, the shape misfit and Ctrl-C run
as real subprocesses; the other cases call ``initwise.cli.main`` in-process (same exit status
and streams) to keep the suite fast on two shared cores (each subprocess imports torch).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest


def test_missing_data_file(cli, one_line_error):
    proc = cli("doctor", "model.py:mlp", "--data", "nope.svm")
    one_line_error(proc, "--data: no such file 'nope.svm'", "give a svmlight")


def test_missing_model_file_and_missing_factory_part(call, one_line_error):
    one_line_error(call("init", "nothere.py:mlp", "--data", "data.svm", "--out", "w.pt"),
                   "MODEL: no such file 'nothere.py'")
    one_line_error(call("doctor", "model.py", "--data", "data.svm"),
                   "names a Python file but no factory", "model.py:make_model")


def test_wrong_data_format(call, one_line_error):
    err = one_line_error(call("doctor", "model.py:mlp", "--data", "garbage.svm"),
                         "--data: cannot read 'garbage.svm'")
    assert "line 1" in err  # initwise.data locates the fault


def test_factory_that_raises_and_debug_shows_traceback(cli, one_line_error):
    proc = cli("doctor", "model.py:broken", "--data", "data.svm")
    one_line_error(proc, "factory model.py:broken raised RuntimeError: boom: the factory failed")


def test_debug_raises_instead_of_one_line(work, monkeypatch):
    from initwise.cli import main

    monkeypatch.chdir(work)
    with pytest.raises(ValueError, match="boom: the factory failed") as info:
        main(["doctor", "model.py:broken", "--data", "data.svm", "--debug"])
    assert isinstance(info.value.__cause__, RuntimeError)  # the factory's own error, chained


def test_factory_returning_a_non_module(call, one_line_error):
    one_line_error(call("doctor", "model.py:not_a_module", "--data", "data.svm"),
                   "returned dict, not a torch.nn.Module")


def test_unknown_factory_lists_the_callables(call, one_line_error):
    one_line_error(call("doctor", "model.py:mpl", "--data", "data.svm"),
                   "has no callable 'mpl'", "mlp", "sparse_mlp")


def test_shapes_that_do_not_fit_the_model(cli, one_line_error):
    proc = cli("doctor", "model.py:mlp", "--model-kwargs", '{"in_features": 7}', "--data",
               "data.svm")
    one_line_error(proc, "does not fit the model", "20 features", "--model-kwargs")


def test_too_few_outputs_for_the_labels(call, one_line_error):
    proc = call("doctor", "model.py:mlp", "--model-kwargs", '{"n_classes": 2}', "--data",
                "data.svm")
    one_line_error(proc, "logits (", "do not fit the targets", "class labels 0..2 need at least 3")


def test_target_column_that_does_not_exist(call, one_line_error):
    one_line_error(call("doctor", "model.py:mlp", "--data", "data.csv", "--target", "nope"),
                   "--data: cannot read 'data.csv'", "nope")


def test_bad_model_kwargs_json(call, one_line_error):
    one_line_error(call("doctor", "model.py:mlp", "--model-kwargs", "{depth: 3}", "--data",
                       "data.svm"), "--model-kwargs: not valid JSON", "'{\"depth\": 12}'")
    one_line_error(call("doctor", "model.py:mlp", "--model-kwargs", "[3]", "--data",
                       "data.svm"), "expected a JSON object, got list")



def test_model_kwargs_the_factory_does_not_take(call, one_line_error):
    one_line_error(call("doctor", "model.py:mlp", "--model-kwargs", '{"depht": 3}', "--data",
                        "data.svm"), "unexpected keyword argument 'depht'", "check --model-kwargs")


def test_unknown_preset_is_usage_error_with_status_3(cli):
    proc = cli("doctor", "model.py:mlp", "--data", "data.svm", "--preset", "deep")
    assert proc.returncode == 3
    assert "invalid choice: 'deep'" in proc.stderr and "quick" in proc.stderr
    assert "Traceback" not in proc.stderr



def test_unknown_verb_is_usage_error(call):
    unknown = call("frobnicate")
    assert unknown.returncode == 3 and "invalid choice: 'frobnicate'" in unknown.stderr


def test_bad_out_extension_and_weights(call, one_line_error):
    one_line_error(call("init", "model.py:mlp", "--data", "data.svm", "--out", "w.txt"),
                   "--out: unsupported extension '.txt'", ".safetensors or .pt")
    one_line_error(call("doctor", "model.py:mlp", "--data", "data.svm", "--weights", "no.pt"),
                   "--weights: no such file 'no.pt'")


def test_missing_module(call, one_line_error):
    one_line_error(call("doctor", "no_such_pkg.models:mlp", "--data", "data.svm"),
                   "no module named 'no_such_pkg'")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_prints_one_line_and_exits_130(work):
    env = dict(os.environ, NO_COLOR="1")
    proc = subprocess.Popen([sys.executable, "-m", "initwise", "doctor", "model.py:slow",
                             "--data", "data.svm"], cwd=work, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert err.strip() == "initwise: interrupted"
