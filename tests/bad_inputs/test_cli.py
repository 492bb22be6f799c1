"""Issue 14's command-line cases, each a real ``python -m initwise`` process.

Each case names the exit status and the key words of the message it must give: a refusal is
exit 3 with one line on stderr naming the problem and the remedy (``one_line_error``, from
tests/cli); a documented handling exits as usual with a ``note:`` line on stdout saying what
initwise decided and how to state it. Processes run a few at a time (``many``).
"""

from __future__ import annotations

import json

import pytest

MLP = ("doctor", "model.py:mlp", "--preset", "quick")
INIT = ("init", "model.py:mlp", "--batches", "1")

# id: (argv, substrings of the one stderr line). Every one exits 3.
REFUSED: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # 1. label leakage: a label-like column and no --target
    "csv label column named 'label' without --target": (
        (*MLP, "--data", "data.csv"),
        ("--data: 'data.csv': no target given, but column 'label' looks like a label",
         "it is named 'label'", "leak the label into the inputs", "pass --target label",
         "or --no-target")),
    "csv last column of few integers without --target": (
        (*MLP, "--data", "grade.csv"),
        ("column 'grade' looks like a label", "it is the last column and holds only integers",
         "3 distinct values (0..2)", "pass --target grade")),
    "--target and --no-target together": (
        (*MLP, "--data", "data.csv", "--target", "label", "--no-target"),
        ("argument --no-target: not allowed with argument --target", "--help")),
    # 2. svmlight base stated explicitly
    "--zero-based and --one-based together": (
        (*MLP, "--data", "data.svm", "--zero-based", "--one-based"),
        ("argument --one-based: not allowed with argument --zero-based",)),
    "--zero-based on a 1-based file: one column too many": (
        (*MLP, "--data", "data.svm", "--zero-based"),
        ("does not fit the model", "(256, 21) float32", "21 features")),
    "--zero-based on a CSV": (
        (*MLP, "--data", "data.csv", "--target", "label", "--zero-based"),
        ("--zero-based/--one-based: only svmlight files have 0- or 1-based indices", "read as csv",
         "drop it")),
    # 3. delimiter
    "--delimiter of two characters": (
        (*MLP, "--data", "semicolon.csv", "--delimiter", ";;"),
        ("argument --delimiter: expected one character (e.g. ';' or tab), got ';;'",)),
    "--delimiter for an svmlight file": (
        (*MLP, "--data", "data.svm", "--delimiter", ";"),
        ("--delimiter: only CSV files have a delimiter", "read as svmlight", "drop it")),
    "wrong --delimiter": (
        (*MLP, "--data", "semicolon.csv", "--target", "label", "--delimiter", ","),
        ("--data: cannot read 'semicolon.csv'", "unknown target column 'label'")),
    # 4. corrupt / truncated compressed files: exit 3 naming the file, not 4
    "truncated .gz": (
        (*MLP, "--data", "truncated.svm.gz"),
        ("--data: cannot read 'truncated.svm.gz'", "corrupt or truncated gz data after",
         "complete lines", "EOFError", "gzip -t truncated.svm.gz")),
    "not gzip data in a .gz": (
        (*MLP, "--data", "notgzip.csv.gz"),
        ("--data: cannot read 'notgzip.csv.gz'", "line 1: corrupt or truncated gz data",
         "download or compress the file again")),
    # 5. torch.export programs
    "init on a .pt2": (
        ("init", "m.pt2", "--data", "data.svm", "--out", "never.pt"),
        ("MODEL: 'm.pt2' is a torch.export program, which initwise init cannot initialize",
         "one graph of aten operations", "give the model's code (file.py:factory",
         "initwise doctor")),
    "doctor on a .pt2 with a static batch size": (
        ("doctor", "static8.pt2", "--data", "data.svm"),
        ("exported with a static batch size of 8", "--batch-size is 256",
         "pass --batch-size 8")),
    # 7. policies
    "unknown --policy": (
        (*INIT, "--data", "data.svm", "--out", "never2.pt", "--policy", "kaiming_he"),
        ("--policy: unknown policy 'kaiming_he'",
         "choose one of auto, generic, respect, critical, torch, xavier, kaiming, lecun, "
         "orthogonal",
         "initwise.policy.register_policy")),
    # 8. pickles are refused, never loaded
    "pickled .npy": (
        (*MLP, "--data", "pickled.npy"),
        ("--data: cannot read 'pickled.npy'", "holds pickled Python objects",
         "allow_pickle=False", "save a numeric array")),
    "pickled .npz": (
        (*MLP, "--data", "pickled.npz"),
        ("--data: cannot read 'pickled.npz'", "an array of the .npz archive holds pickled",
         "allow_pickle=False")),
    "pickled .pt weights": (
        (*MLP, "--data", "data.svm", "--weights", "pickled.pt"),
        ("--weights: cannot read 'pickled.pt'", "pickled Python objects beyond tensors",
         "weights_only=True", "torch.save(model.state_dict(), path)")),
    "pickled .pt as MODEL": (
        ("doctor", "pickled.pt", "--data", "data.svm"),
        ("MODEL: 'pickled.pt' is not a TorchScript archive", "--weights pickled.pt")),
}

# id: argv of runs that succeed (documented handling: a note, or the fix itself).
HANDLED: dict[str, tuple[str, ...]] = {
    "svmlight read 1-based, said": (*MLP, "--data", "data.svm"),
    "svmlight --one-based: nothing to say": (*MLP, "--data", "data.svm", "--one-based"),
    "semicolon CSV sniffed, said": (*MLP, "--data", "semicolon.csv", "--target", "label"),
    "tab CSV sniffed, said": (*MLP, "--data", "tabs.csv", "--target", "label"),
    "--delimiter stated: nothing to say": (*MLP, "--data", "semicolon.csv", "--target",
                                           "label", "--delimiter", ";"),
    "--no-target keeps the column": (*MLP, "--data", "data.csv", "--no-target",
                                     "--model-kwargs", '{"in_features": 21}'),
    "static .pt2 with its batch size": ("doctor", "static8.pt2", "--data", "data.svm",
                                        "--batch-size", "8", "--preset", "quick"),
    "init prints the real seed": (*INIT, "--data", "data.svm", "--out", "seeded.pt",
                                  "--seed", "5", "--json", "seeded.json"),
    "init default seed": (*INIT, "--data", "data.svm", "--out", "seed0.pt"),
    "init --help lists the policies": ("init", "--help"),
}


@pytest.fixture(scope="module")
def results(many, hostile):
    cases = {key: argv for key, (argv, _) in REFUSED.items()}
    return many({**cases, **HANDLED})


@pytest.mark.parametrize("case", list(REFUSED))
def test_refused_with_one_line_naming_the_remedy(case, results, hostile, one_line_error):
    one_line_error(results[case], *REFUSED[case][1])
    assert results[case].stdout == ""
    assert not (hostile / "never.pt").exists() and not (hostile / "never2.pt").exists()


def test_pickle_payloads_never_ran(results, hostile):
    for name in ("npy", "npz", "pt"):
        assert not (hostile / f"{name}-payload-ran").exists(), name


def _note(proc) -> list[str]:
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # notes are output, not errors
    return [line for line in proc.stdout.splitlines() if line.startswith("note: ")]


def test_svmlight_base_is_said_unless_stated(results):
    (note,) = _note(results["svmlight read 1-based, said"])
    assert note.startswith("note: data.svm: read as a 1-based svmlight file (index 1 is "
                           "column 0), because feature index 0 never occurs in it")
    assert "pass --zero-based if it is 0-based" in note and "--one-based to state" in note
    assert _note(results["svmlight --one-based: nothing to say"]) == []


@pytest.mark.parametrize("case,shown,count", [
    ("semicolon CSV sniffed, said", "';'", 20), ("tab CSV sniffed, said", "tab", 20)])
def test_sniffed_delimiter_is_said(results, case, shown, count):
    (note,) = _note(results[case])
    assert f"read with the delimiter {shown}, sniffed from the header line (it has {count} x " \
           f"{shown} and 0 x ',')" in note
    assert "pass --delimiter " in note
    assert "n_features 20" in results[case].stdout  # 20 features + the label: read right
    assert _note(results["--delimiter stated: nothing to say"]) == []


def test_no_target_reads_every_column_as_a_feature(results):
    proc = results["--no-target keeps the column"]
    assert _note(proc) == [] and "n_features 21" in proc.stdout


def test_static_pt2_runs_with_its_batch_size(results):
    proc = results["static .pt2 with its batch size"]
    assert proc.returncode == 0, proc.stderr
    assert "Healthy" in proc.stdout


def test_init_header_prints_the_real_seed(results, hostile):
    seeded = results["init prints the real seed"]
    assert seeded.returncode == 0, seeded.stderr
    assert "InitReport (policy=auto, seed=5)" in seeded.stdout
    assert json.loads((hostile / "seeded.json").read_text())["seed"] == 5
    default = results["init default seed"]
    assert default.returncode == 0, default.stderr
    assert "InitReport (policy=auto, seed=0)" in default.stdout and "seed=None" not in \
        default.stdout


def test_init_help_lists_policies_and_data_options(results):
    text = " ".join(results["init --help lists the policies"].stdout.split())
    assert ("auto, generic, respect, critical, torch, xavier, kaiming, lecun, orthogonal "
            "(default auto)") in text
    for option in ("--no-target", "--zero-based", "--one-based", "--delimiter CHAR"):
        assert option in text
    assert "looks like a label: one named label, labels, target, targets, y or class" in text
