"""Every bad-input case of issue 6, each a real ``python -m initwise`` process.

Contract: exit status 3, exactly one line on stderr naming the problem and the remedy, no
traceback (with ``--debug``: the traceback). The processes run a few at a time (``run_many``):
each pays a torch import, except the cases ``initwise._loading.precheck`` stops before it.
Further cases beyond the issue's list (``IN_PROCESS``) check the same contract in-process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

MLP = ("doctor", "model.py:mlp", "--data", "data.svm")

# id: (argv, substrings of the one stderr line: the problem ... and the remedy)
CASES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # -- missing files (precheck: no torch import) --
    "missing data file": (
        ("doctor", "model.py:mlp", "--data", "nope.svm"),
        ("--data: no such file 'nope.svm'", "give a svmlight, .npz, .npy, .csv or .parquet")),
    "data is a folder": (
        ("doctor", "model.py:mlp", "--data", "."), ("--data: '.' is a directory", "give a file")),
    "missing model file": (
        ("init", "nothere.py:mlp", "--data", "data.svm", "--out", "w.pt"),
        ("MODEL: no such file 'nothere.py'", "check the path")),
    "missing archive": (
        ("doctor", "gone.pt2", "--data", "data.svm"),
        ("MODEL: no such file 'gone.pt2'", "give path/to/file.py:factory")),
    "python file without factory": (
        ("doctor", "model.py", "--data", "data.svm"),
        ("names a Python file but no factory", "write model.py:make_model")),
    "missing weights": (
        (*MLP, "--weights", "no.pt"), ("--weights: no such file 'no.pt'", "check the path")),
    "bad --out extension": (
        ("init", "model.py:mlp", "--data", "data.svm", "--out", "w.txt"),
        ("--out: unsupported extension '.txt'", "use .safetensors or .pt")),
    # -- bad --model-kwargs (precheck) --
    "model-kwargs not JSON": (
        ("doctor", "model.py:mlp", "--model-kwargs", "{depth: 3}", "--data", "data.svm"),
        ("--model-kwargs: not valid JSON", "e.g. --model-kwargs '{\"depth\": 12}'")),
    "model-kwargs not an object": (
        ("doctor", "model.py:mlp", "--model-kwargs", "[3]", "--data", "data.svm"),
        ("--model-kwargs: expected a JSON object, got list", "write e.g. --model-kwargs")),
    "model-kwargs for an archive": (
        ("doctor", "m.ts", "--model-kwargs", '{"depth": 2}', "--data", "data.svm"),
        ("only a factory takes keyword arguments", "drop it")),
    # -- unknown verb / preset / option / value (argparse, status 3 not 2) --
    "unknown preset": (
        (*MLP, "--preset", "deep"),
        ("invalid choice: 'deep'", "'quick', 'standard', 'full'", "see 'initwise doctor --help'")),
    "unknown loss": (
        (*MLP, "--loss", "hinge"), ("invalid choice: 'hinge'", "'ce', 'bce', 'mse'", "--help")),
    "unknown option": (
        (*MLP, "--bogus"), ("unrecognized arguments: --bogus", "see 'initwise --help'")),
    "unknown verb": (
        ("frobnicate",), ("invalid choice: 'frobnicate'", "'gains'", "see 'initwise --help'")),
    "missing --data": (
        ("doctor", "model.py:mlp"),
        ("the following arguments are required: --data", "'initwise doctor --help'")),
    "non-positive --batch-size": (
        (*MLP, "--batch-size", "0"), ("expected a positive integer, got 0", "--help")),
    # -- wrong data format / target column (torch imported from here on) --
    "wrong data format": (
        ("doctor", "model.py:mlp", "--data", "garbage.svm"),
        ("--data: cannot read 'garbage.svm'", "line 1", "write lines as '<label> <index>:<value>")),
    "target column that does not exist": (
        ("doctor", "model.py:mlp", "--data", "data.csv", "--target", "nope"),
        ("--data: cannot read 'data.csv'", "unknown target column 'nope'", "'label'",
         "with --target COL")),
    # -- the model: factory, module, archive --
    "factory that raises": (
        ("doctor", "model.py:broken", "--data", "data.svm"),
        ("factory model.py:broken raised RuntimeError: boom: the factory failed",
         "fix the factory", "--debug")),
    "factory returning a non-Module": (
        ("doctor", "model.py:not_a_module", "--data", "data.svm"),
        ("returned dict, not a torch.nn.Module", "make it return the model")),
    # -- shapes that do not fit the model --
    "inputs that do not fit the model": (
        ("doctor", "model.py:mlp", "--model-kwargs", '{"in_features": 7}', "--data", "data.svm"),
        ("does not fit the model", "(256, 20) float32", "20 features", "(256x20 and 7x32)",
         "build the model for these shapes (e.g. --model-kwargs)")),
    "too few outputs for the labels": (
        ("init", "model.py:mlp", "--model-kwargs", '{"n_classes": 2}', "--data", "data.svm",
         "--out", "never.pt"),
        ("logits (256, 2) do not fit the targets", "class labels 0..2 need at least 3",
         "one output per class")),
    # -- the other verbs --
    "theory: unknown activation": (
        ("theory", "nope"), ("unknown activation 'nope'", "Known: ", "relu")),
    "demo: data without labels": (  # issue 14: refused at reading, naming the label column
        ("demo", "--data", "data.csv", "--epochs", "1"),
        ("column 'label' looks like a label", "pass --target label to use it as the target")),
    "unwritable --json": (
        (*MLP, "--preset", "quick", "--json", "no/such/folder/d.json"),
        ("--json: the folder of 'no/such/folder/d.json' does not exist", "create it first")),
    "--out of demo in a missing folder": (
        ("demo", "--max-docs", "50", "--out", "no/such/folder/demo.html"),
        ("--out: the folder of 'no/such/folder/demo.html' does not exist", "create it first")),
}

# Further bad input beyond the list: the same contract, checked in-process (same
# ``initwise.cli.main``, same streams) because each would pay a torch import of its own.
IN_PROCESS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "unknown factory": (
        ("doctor", "model.py:mpl", "--data", "data.svm"),
        ("has no callable 'mpl'", "broken, mlp, not_a_module, slow, sparse_mlp", "after the ':'")),
    "model-kwargs the factory does not take": (
        ("doctor", "model.py:mlp", "--model-kwargs", '{"depht": 3}', "--data", "data.svm"),
        ("unexpected keyword argument 'depht'", "check --model-kwargs")),
    "missing module": (
        ("doctor", "no_such_pkg.models:mlp", "--data", "data.svm"),
        ("no module named 'no_such_pkg'", "install the package")),
    "state dict given as MODEL": (
        ("doctor", "state.pt", "--data", "data.svm"),
        ("is not a TorchScript archive", "pass path/to/file.py:factory --weights state.pt")),
    "TorchScript MODEL": (
        ("doctor", "m.ts", "--data", "data.svm"),
        ("is a TorchScript module", "give the model's code", "torch.export .pt2")),
    "weights that do not fit the model": (
        (*MLP, "--model-kwargs", '{"width": 8}', "--weights", "state.pt"),
        ("--weights: 'state.pt' does not fit the model", "same factory and --model-kwargs")),
    "targets that fit no loss": (
        ("doctor", "model.py:mlp", "--data", "data.svm", "--loss", "mse"),
        ("do not fit the targets", "mse needs targets", "pick --loss")),
}


@pytest.fixture(scope="module")
def results(many, archives):
    """Every case of ``CASES`` run once (a few processes at a time), plus ``--debug``."""
    cases = {key: argv for key, (argv, _) in CASES.items()}
    cases["--debug"] = ("doctor", "model.py:broken", "--data", "data.svm", "--debug")
    return many(cases)


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_with_remedy_and_status_3(case, results, work, one_line_error):
    argv, needles = CASES[case]
    one_line_error(results[case], *needles)
    assert results[case].stdout == ""  # nothing half-done was printed
    if argv[0] == "init":
        assert not (work / argv[-1]).exists()  # nothing saved


@pytest.mark.parametrize("case", list(IN_PROCESS))
def test_more_bad_input_in_process(case, archives, call, one_line_error):
    argv, needles = IN_PROCESS[case]
    proc = call(*argv)
    one_line_error(proc, *needles)
    assert proc.stdout == ""


def test_debug_shows_the_traceback_of_the_factory(results):
    proc = results["--debug"]
    assert proc.returncode not in (0, 3)
    assert "Traceback (most recent call last)" in proc.stderr
    # The factory's own error and the one-line LoadError it is chained to.
    assert "RuntimeError: boom: the factory failed" in proc.stderr
    assert "direct cause of the following exception" in proc.stderr
    assert "initwise._loading.LoadError: MODEL: factory model.py:broken" in proc.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_prints_one_line_and_exits_130(work):
    env = dict(os.environ, NO_COLOR="1")
    # a suite started in the background by a non-interactive shell inherits SIGINT ignored;
    # give the child the default disposition so Python installs its KeyboardInterrupt handler
    proc = subprocess.Popen([sys.executable, "-m", "initwise", "doctor", "model.py:slow",
                             "--data", "data.svm"], cwd=work, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert err.strip() == "initwise: interrupted"
