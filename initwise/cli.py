"""The ``initwise`` command line: ``gains``, ``theory``, ``doctor``, ``init`` and ``demo``.

Thin over the public API (the work lives in ``initwise._commands`` and ``initwise.demo``).

Exit status: 0 success / healthy; 1 warnings found (``doctor --strict`` only); 2 errors found
(``doctor``); 3 bad usage or input (one line on stderr naming the problem and the remedy; the
traceback only with ``--debug``); 4 an internal error (a bug: please report it with the
``--debug`` traceback); 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Sequence

from initwise._loading import precheck
from initwise._version import __version__

__all__ = ["main", "build_parser"]

EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 3, 4, 130

_EXIT_TEXT = """\
exit status:
  0  success (doctor: no errors, and no warnings under --strict)
  1  doctor --strict found warnings only
  2  doctor found errors
  3  bad usage or input (one line naming the problem and the remedy; --debug for the traceback)
  4  internal error (a bug in initwise: rerun with --debug and report the traceback)
  130 interrupted (Ctrl-C)
"""

_MODEL_TEXT = """\
MODEL is one of:
  path/to/file.py:factory     the file is IMPORTED AND RUN (like pytest runs a test file), then
                              factory(**MODEL_KWARGS) must return a torch.nn.Module
  package.module:factory      imported from the installed package
  model.pt / model.ts         a TorchScript archive (torch.jit.save)
  model.pt2                   a torch.export archive (torch.export.save); doctor only: init
                              refuses it (torch inlines the layers into one graph of aten ops,
                              so there are no modules to calibrate); export with dynamic_shapes,
                              or pass --batch-size N with the N it was exported with
Only load files you trust. Checkpoints given with --weights load with weights_only=True.
FILE is anything initwise.data.load reads: svmlight/libsvm, .npz, .npy, .csv, .parquet
(.gz/.bz2/.xz text too). How it was read is printed as a note when initwise decided it: an
svmlight file without index 0 is read 1-based (--zero-based / --one-based to say so), a CSV
delimiter other than ',' is sniffed from the header (--delimiter to say so). A table read
without --target is refused when a column looks like a label: one named label, labels, target,
targets, y or class, or a last column of 2..20 distinct integers next to real-valued columns
(--target COL to use it, --no-target to keep every column as a feature).
"""

# The policies initwise registers (tests/bad_inputs/test_cli.py checks this against the
# registry); a MODEL file may register more, which --policy then accepts too.
BUILTIN_POLICIES = ("auto", "generic", "respect", "critical", "torch", "xavier", "kaiming", "lecun",
                    "orthogonal")


class _Parser(argparse.ArgumentParser):
    """argparse that exits with status 3 (not 2, which means "errors found") on bad usage."""

    def error(self, message: str) -> None:  # type: ignore[override]
        # One line (no usage block): the problem and where to look for the remedy.
        self.exit(EXIT_USAGE, f"initwise: error: {message}; see '{self.prog} --help'\n")


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32, width=100)


def _sub(subs: argparse._SubParsersAction, name: str, help_: str, examples: str,
         extra: str = "") -> argparse.ArgumentParser:
    epilog = "examples:\n" + textwrap.indent(textwrap.dedent(examples).strip(), "  ") + "\n"
    if extra:
        epilog += "\n" + extra
    p = subs.add_parser(name, help=help_, description=help_, epilog=epilog + "\n" + _EXIT_TEXT,
                        formatter_class=_formatter)
    p.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    return p


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="file.py:factory, package.module:factory, "
                   "or a TorchScript / .pt2 file (see below; a .py file is run)")
    p.add_argument("--data", required=True, metavar="FILE", help="the data file")
    _data_args(p)
    p.add_argument("--model-kwargs", metavar="JSON", help="JSON object of factory keyword "
                   "arguments, e.g. '{\"depth\": 12}'")
    p.add_argument("--weights", metavar="CKPT", help="state dict to load first (.pt with "
                   "weights_only=True, or .safetensors)")
    p.add_argument("--loss", choices=("ce", "bce", "mse"), help="loss (default: inferred "
                   "from the targets)")
    p.add_argument("--batch-size", type=_positive, default=256, metavar="N",
                   help="rows per batch (default 256)")
    p.add_argument("--layout", choices=("auto", "sparse", "dense", "bag"), default="auto",
                   help="batch layout fed to the model (default auto: sparse for an "
                   "initwise.nn.SparseLinear input layer, bag for EmbeddingBag, else dense)")
    p.add_argument("--seed", type=int, default=0, help="seed of the batch order and of the "
                   "init (default 0)")
    p.add_argument("--json", metavar="OUT.json", help="also write the report as JSON")
    p.add_argument("--html", metavar="OUT.html", help="also write a self-contained HTML report")
    p.add_argument("--quiet", action="store_true", help="no progress lines on standard error "
                   "(by default work that takes more than 2 s says what it is doing)")


def _data_args(p: argparse.ArgumentParser) -> None:
    target = p.add_mutually_exclusive_group()
    target.add_argument("--target", metavar="COL", help="target column (csv/parquet name, .npy "
                        "index) or .npz array name")
    target.add_argument("--no-target", action="store_true", help="the file has no target "
                        "column: read every column as a feature (without it, a label-like "
                        "column is refused, see FILE below)")
    base = p.add_mutually_exclusive_group()
    base.add_argument("--zero-based", dest="zero_based", action="store_const", const=True,
                      default="auto", help="svmlight indices start at 0 (default: 0-based if "
                      "index 0 occurs, else 1-based, with a note)")
    base.add_argument("--one-based", dest="zero_based", action="store_const", const=False,
                      help="svmlight indices start at 1")
    p.add_argument("--delimiter", type=_delimiter, metavar="CHAR", help="CSV field separator, "
                   "e.g. ';' or tab (default: sniffed from the header line, ',' unless ';', "
                   "tab or '|' occurs more often)")


def _delimiter(text: str) -> str:
    value = {"tab": "\t", "\\t": "\t"}.get(text.lower(), text)
    if len(value) != 1 or value in "\r\n\"":
        raise argparse.ArgumentTypeError(f"expected one character (e.g. ';' or tab), got "
                                         f"{text!r}")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``initwise`` argument parser (one sub-parser per verb)."""
    parser = _Parser(
        prog="initwise",
        description="Initialization, diagnosis and theory that make neural networks learn on "
        "hard (sparse, high-dimensional, badly scaled) data.",
        epilog="Run 'initwise VERB --help' for a verb's options and examples.\n\n" + _EXIT_TEXT,
        formatter_class=_formatter,
    )
    parser.add_argument("--version", action="version", version=f"initwise {__version__}")
    subs = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    _add_gains(subs)
    _add_theory(subs)
    _add_doctor(subs)
    _add_init(subs)
    _add_demo(subs)
    return parser


def _add_gains(subs: argparse._SubParsersAction) -> None:
    p = _sub(subs, "gains", "Print initwise's variance-preserving gain for every known "
             "activation next to torch.nn.init.calculate_gain.",
             """
             initwise gains
             initwise gains --json > gains.json
             """)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _add_theory(subs: argparse._SubParsersAction) -> None:
    p = _sub(subs, "theory", "Mean-field signal propagation for one activation: fixed point "
             "q*, chi_1, phase, depth scales, edge of chaos, max trainable depth.",
             """
             initwise theory relu
             initwise theory tanh --sigma-b 0.05 --depth 50
             initwise theory gelu --sigma-w 1.6 --sigma-b 0.1 --json
             """)
    p.add_argument("activation", metavar="ACTIVATION", help="activation name (relu, tanh, "
                   "gelu, silu, selu, elu, ...)")
    p.add_argument("--sigma-w", type=float, help="weight std x sqrt(fan_in) (default: the "
                   "edge of chaos for --sigma-b)")
    p.add_argument("--sigma-b", type=float, default=0.0, help="bias std (default 0)")
    p.add_argument("--depth", type=_positive, default=20, help="your network's depth "
                   "(default 20)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")


def _add_doctor(subs: argparse._SubParsersAction) -> None:
    p = _sub(subs, "doctor", "Diagnose a model on a batch of your data: dead or saturated "
             "units, exploding/vanishing signals and gradients, bad initial loss, unscaled "
             "inputs; with fixes.",
             """
             initwise doctor model.py:make_model --data train.svm
             initwise doctor model.py:make_model --model-kwargs '{"depth": 12}' \\
                 --data train.csv --target label --html report.html --json report.json
             initwise doctor mypkg.models:mlp --data x.npz --strict   # CI gate: exit 1 on warnings
             """, _MODEL_TEXT)
    _model_args(p)
    p.add_argument("--preset", choices=("quick", "standard", "full"), default="standard",
                   help="which checks to run (default standard)")
    p.add_argument("--optimizer", choices=("none", "sgd", "adam"), default="sgd",
                   help="optimizer for the update-ratio check (default sgd, momentum 0.9)")
    p.add_argument("--lr", type=float, help="learning rate (default 0.05 sgd, 1e-3 adam)")
    p.add_argument("--strict", action="store_true", help="exit 1 when warnings (but no "
                   "errors) are found")


def _add_init(subs: argparse._SubParsersAction) -> None:
    p = _sub(subs, "init", "Data-aware initialization of a model on your data; saves the "
             "weights and prints what was done.",
             """
             initwise init model.py:make_model --data train.svm --out weights.safetensors
             initwise init mypkg.models:mlp --data x.csv --target y --out w.pt --seed 1 \\
                 --html init.html
             # then: model.load_state_dict(safetensors.torch.load_file("weights.safetensors"))
             """, _MODEL_TEXT)
    _model_args(p)
    p.add_argument("--out", required=True, metavar="WEIGHTS", help="where to save the state "
                   "dict: .safetensors or .pt")
    p.add_argument("--policy", default="auto", metavar="NAME", help="structural policy before "
                   f"calibration: {', '.join(BUILTIN_POLICIES)} (default auto), or one the "
                   "MODEL file registers with initwise.policy.register_policy")
    p.add_argument("--batches", type=_positive, default=4, help="calibration batches "
                   "(default 4)")


def _add_demo(subs: argparse._SubParsersAction) -> None:
    p = _sub(subs, "demo", "The whole story on real sparse text (built offline from Python's "
             "standard library, 2^18 hashed features): diagnose torch's default init on a deep "
             "MLP, fix it with initwise.init, train both, compare.",
             """
             initwise demo
             initwise demo --epochs 3 --seed 1 --out demo.html
             initwise demo --data train.svm            # your own file
             initwise demo --data train.csv --target label
             """)
    p.add_argument("--data", metavar="FILE", help="your own data file instead of the built-in "
                   "text set")
    p.add_argument("--target", metavar="COL", help="target column for --data")
    p.add_argument("--epochs", type=_positive, default=2, help="training epochs (default 2)")
    p.add_argument("--seed", type=int, default=0, help="seed for everything (default 0)")
    p.add_argument("--out", default="initwise-demo.html", metavar="OUT.html",
                   help="HTML report path (default initwise-demo.html)")
    p.add_argument("--depth", type=_positive, default=8, help="hidden layers after the sparse "
                   "input layer (default 8)")
    p.add_argument("--width", type=_positive, default=128, help="hidden width (default 128)")
    p.add_argument("--n-features", type=_positive, default=2**18, help="hashed features of the "
                   "built-in set (default 262144)")
    p.add_argument("--optimizer", choices=("adam", "sgd"), default="adam",
                   help="adam (lr 1e-3; SparseAdam on the sparse input layer) or sgd "
                   "(momentum 0.9, lr 0.05, dense gradients; slower); default adam")
    p.add_argument("--batch-size", type=_positive, default=256, metavar="N",
                   help="rows per training batch (default 256)")
    p.add_argument("--threads", type=_positive, help="torch threads (default: min(4, cores))")
    p.add_argument("--max-docs", type=_positive, help="cap the built-in set's size (for a "
                   "quick look)")
    p.add_argument("--json", metavar="OUT.json", help="also write the numbers as JSON")


def _run(args: argparse.Namespace) -> int:
    precheck(args)  # fast failures before torch is imported
    # The verbs import torch: imported here, when one runs, so `initwise --help` starts fast.
    from initwise import _commands

    if args.verb == "demo":
        from initwise.demo import run_demo

        return run_demo(args)
    return {
        "gains": _commands.run_gains,
        "theory": _commands.run_theory,
        "doctor": _commands.run_doctor,
        "init": _commands.run_init,
    }[args.verb](args)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``initwise`` command line; returns the exit status (see the module docstring).

    Args:
        argv: the arguments (default ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors (status 3)
        return int(exc.code or 0)
    if not args.verb:
        parser.print_help()
        return 0
    try:
        return _run(args)
    except KeyboardInterrupt:
        print("initwise: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, TypeError, KeyError, OSError, ImportError) as exc:
        if args.debug:
            raise
        print(f"initwise {args.verb}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        if args.debug:
            raise
        print(f"initwise {args.verb}: internal error: {type(exc).__name__}: {_one_line(exc)} "
              f"(a bug in initwise; rerun with --debug and report the traceback)",
              file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
