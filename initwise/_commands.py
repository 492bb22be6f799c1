"""What the CLI verbs do, over the public API (``initwise.cli`` only parses and dispatches).

Each ``run_*`` function takes the parsed ``argparse.Namespace``, prints to ``out`` and returns
the process exit status. Bad input raises :class:`initwise._loading.LoadError` (exit 3).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from initwise._loading import (
    LoadError,
    check_out,
    load_data,
    load_model,
    load_weights,
    parse_model_kwargs,
    static_batch_size,
)

if TYPE_CHECKING:  # torch is imported where it is used: `initwise theory` runs without it
    import torch
    from torch import nn

__all__ = [
    "EXIT_ERRORS",
    "EXIT_OK",
    "EXIT_USAGE",
    "EXIT_WARNINGS",
    "check_fits",
    "choose_layout",
    "run_doctor",
    "run_gains",
    "run_init",
    "run_theory",
    "save_state_dict",
]

EXIT_OK, EXIT_WARNINGS, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2, 3
_DENSE_LIMIT_BYTES = 1 << 30


def _kind(module: nn.Module) -> str:
    return getattr(module, "original_name", None) or type(module).__name__


def choose_layout(model: nn.Module) -> str:
    """The batch layout a model's first parametrized layer takes.

    ``SparseLinear`` -> ``"sparse"`` (torch sparse CSR), ``EmbeddingBag`` -> ``"bag"``,
    anything else -> ``"dense"``.
    """
    for module in model.modules():
        if any(True for _ in module.parameters(recurse=False)):
            kind = _kind(module)
            if kind == "SparseLinear":
                return "sparse"
            if kind == "EmbeddingBag":
                return "bag"
            return "dense"
    return "dense"


def _describe(x: Any) -> str:
    import torch

    if isinstance(x, torch.Tensor):
        layout = "" if x.layout == torch.strided else f" {str(x.layout).replace('torch.', '')}"
        return f"{tuple(x.shape)} {str(x.dtype).replace('torch.', '')}{layout}"
    if isinstance(x, tuple):
        return "(" + ", ".join(_describe(v) for v in x) + ")"
    return type(x).__name__


def _modes(model: nn.Module) -> dict[str, bool]:
    return {name: m.training for name, m in model.named_modules()}


def _restore_modes(model: nn.Module, modes: dict[str, bool]) -> None:
    for name, m in model.named_modules():
        if name in modes:
            m.training = modes[name]


def check_fits(model: nn.Module, batch: Any, loss: str | None, data: Any, source: str) -> None:
    """One forward (eval mode, no grad) on ``batch``; a misfit raises a clear LoadError.

    Raises:
        LoadError: naming the batch's shapes, the data's feature/class counts and the error.
    """
    import torch

    from initwise.modelio import call_model, extract_logits, infer_loss

    inputs, targets = batch
    modes = _modes(model)
    for m in model.modules():  # eval mode without eval(): torch.export modules refuse eval()
        m.training = False
    facts = f"{data.n_features} features" + (
        f", {data.n_classes} classes" if getattr(data, "n_classes", None) else ""
    )
    try:
        with torch.no_grad():
            logits, _ = extract_logits(call_model(model, inputs))
    except Exception as exc:
        raise LoadError(
            f"model: a batch from {source!r} (inputs {_describe(inputs)}; the file has {facts}) "
            f"does not fit the model: {type(exc).__name__}: {' '.join(str(exc).split())}; "
            f"build the model for these shapes (e.g. --model-kwargs) or pick --layout"
        ) from exc
    finally:
        _restore_modes(model, modes)
    if targets is not None:
        try:
            spec = infer_loss(logits, targets, loss)
            _check_range(spec, logits, targets)
        except ValueError as exc:
            raise LoadError(
                f"model: its logits {tuple(logits.shape)} do not fit the targets "
                f"{_describe(targets)} of {source!r} ({facts}): {' '.join(str(exc).split())}"
                f"{'' if _has_remedy(exc) else _FIT_REMEDY}"
            ) from exc


_FIT_REMEDY = ("; give the model one output per class (ce), per target column (bce/mse), or "
               "pick --loss")


def _has_remedy(exc: BaseException) -> bool:
    return "; build the model" in str(exc)  # _check_range's message names its own remedy


def _check_range(spec: Any, logits: torch.Tensor, targets: torch.Tensor) -> None:
    if spec.kind != "ce":
        return
    n = logits.shape[spec.class_dim]
    labels = targets[targets != -100]
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= n):
        raise ValueError(f"class labels {int(labels.min())}..{int(labels.max())} need at "
                         f"least {int(labels.max()) + 1} logits, the model has {n}; build the "
                         f"model with one output per class")


def _model_and_data(args: Any, notes: list[str] | None = None) -> tuple[nn.Module, Any]:
    """MODEL (+ --weights) and FILE; the reader's decisions go to ``notes`` (see load_data)."""
    import torch

    model = load_model(args.model, parse_model_kwargs(args.model_kwargs))
    if args.verb == "init":
        _check_policy(args.policy)  # after MODEL: its file may register a policy
    if isinstance(model, torch.jit.ScriptModule):
        raise LoadError(
            f"MODEL: {args.model!r} is a TorchScript module, which does not support the forward "
            f"hooks that initwise {args.verb} measures with; give the model's code "
            f"(file.py:factory, with --weights for a checkpoint) or a torch.export .pt2 file"
        )
    if getattr(args, "weights", None):
        load_weights(model, args.weights)
    data = load_data(args.data, target=args.target, zero_based=args.zero_based,
                     delimiter=args.delimiter, no_target=args.no_target, notes=notes)
    return model, data


def _check_policy(name: str) -> None:
    from initwise.policy import policies

    known = policies()
    if name not in known:
        raise LoadError(
            f"--policy: unknown policy {name!r}; choose one of {', '.join(known)} (or register "
            f"your own in the MODEL file with initwise.policy.register_policy(name, fn))"
        )


def _print_notes(notes: list[str], out: TextIO) -> None:
    """How FILE was read where initwise decided it (svmlight base, CSV delimiter)."""
    for note in notes:
        print(f"note: {note}", file=out)


def _batches(args: Any, model: nn.Module, data: Any, count: int,
             notes: list[str] | None = None) -> list[Any]:
    layout = choose_layout(model) if args.layout == "auto" else args.layout
    _check_static_batch(args, model, data)
    if layout == "dense":
        need = min(args.batch_size, len(data)) * data.n_features * 4
        if need > _DENSE_LIMIT_BYTES:
            raise LoadError(
                f"--data: a dense batch of {args.batch_size} x {data.n_features} floats needs "
                f"{need / 2**30:.1f} GiB; give the model an initwise.nn.SparseLinear input layer "
                f"(--layout sparse) or lower --batch-size"
            )
    batches = []
    for batch in data.batches(args.batch_size, shuffle=True, seed=args.seed, layout=layout):
        batches.append(batch)
        if len(batches) >= count:
            break
    if not batches:
        raise LoadError(f"--data: {args.data!r} has no rows; give a file with data in it")
    try:
        check_fits(model, batches[0], args.loss, data, args.data)
    except LoadError as exc:
        if not notes:
            raise
        # How the file was read may be why it does not fit (an svmlight base, a delimiter).
        raise LoadError(f"{exc} (note: {'; '.join(notes)})") from exc.__cause__
    return batches


def _check_static_batch(args: Any, model: nn.Module, data: Any) -> None:
    n = static_batch_size(model)
    if n is None:
        return
    if args.batch_size != n:
        raise LoadError(
            f"MODEL: {args.model!r} was exported with a static batch size of {n} (its guard "
            f"checks input.size()[0] == {n}), but --batch-size is {args.batch_size}; pass "
            f"--batch-size {n}, or export with dynamic_shapes={{0: torch.export.Dim('batch')}} "
            f"on the batch dimension"
        )
    if len(data) < n:
        raise LoadError(
            f"MODEL: {args.model!r} was exported with a static batch size of {n}, but "
            f"{args.data!r} has only {len(data)} rows; give a file with at least {n} rows, or "
            f"export with dynamic_shapes on the batch dimension"
        )


def _optimizer(args: Any, model: nn.Module) -> torch.optim.Optimizer | None:
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    if args.optimizer == "none" or not params:
        return None
    if args.optimizer == "adam":
        return torch.optim.Adam(params, lr=args.lr if args.lr is not None else 1e-3)
    return torch.optim.SGD(params, lr=args.lr if args.lr is not None else 0.05, momentum=0.9)


def _write(path: str, text: str, what: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise LoadError(f"{what}: cannot write {path!r}: {exc.strerror or exc}; give a path in "
                        f"a folder that exists and that you can write to") from exc


def run_doctor(args: Any, out: TextIO | None = None) -> int:
    """``initwise doctor``: diagnose MODEL on a batch of FILE; exit 0/1/2 as documented."""
    out = out or sys.stdout
    from initwise.doctor import doctor
    from initwise.report import render_terminal

    notes: list[str] = []
    model, data = _model_and_data(args, notes)
    batch = _batches(args, model, data, 1, notes)[0]
    _print_notes(notes, out)
    diagnosis = doctor(
        model, batch, loss_fn=args.loss, optimizer=_optimizer(args, model), checks=args.preset,
        verbose=False if args.quiet else None)
    print(render_terminal(diagnosis, color=_color(out)), file=out)
    if args.json:
        _write(args.json, diagnosis.to_json(), "--json")
    if args.html:
        from initwise.report import Page, render_html
        from initwise.theory_points import phase_diagram, phase_points

        render_html(Page(diagnosis=diagnosis, data_stats=_stats(data),
                         phase=phase_diagram(phase_points(model, batch[0]))), args.html)
        print(f"wrote {args.html}", file=out)
    severities = {f.severity for f in diagnosis.findings}
    if "error" in severities:
        return EXIT_ERRORS
    if args.strict and "warning" in severities:
        return EXIT_WARNINGS
    return EXIT_OK


def save_state_dict(model: nn.Module, path: str) -> str:
    """Save ``model``'s state dict: safetensors for ``.safetensors`` (shared tensors handled by
    ``save_model``), else ``torch.save``. Returns the format used.

    Raises:
        LoadError: on an unsupported extension or a write error.
    """
    import torch

    suffix = check_out(path)
    try:
        if suffix == ".safetensors":
            try:
                from safetensors.torch import save_model
            except ImportError as exc:
                raise LoadError(
                    "--out: .safetensors needs the safetensors package (pip install "
                    "safetensors), or write a .pt file"
                ) from exc
            save_model(model, path)
            return "safetensors"
        torch.save(model.state_dict(), path)
        return "torch.save"
    except OSError as exc:
        raise LoadError(f"--out: cannot write {path!r}: {exc.strerror or exc}; give a path in a "
                        f"folder that exists and that you can write to") from exc


def run_init(args: Any, out: TextIO | None = None) -> int:
    """``initwise init``: data-aware init of MODEL on FILE, save the weights, print the report."""
    out = out or sys.stdout
    import copy

    from initwise.autoinit import init
    from initwise.report import render_terminal

    check_out(args.out)  # before any work
    notes: list[str] = []
    model, data = _model_and_data(args, notes)
    batches = _batches(args, model, data, args.batches, notes)
    _print_notes(notes, out)
    before = copy.deepcopy(model) if args.html else None
    # seed= (not a Generator made here): the same draws, and the report shows the seed.
    report = init(model, iter(batches), loss=args.loss, policy=args.policy, batches=len(batches),
                  seed=args.seed, verbose=False if args.quiet else None)
    fmt = save_state_dict(model, args.out)
    print(render_terminal(report, color=_color(out)), file=out)
    print(f"saved the initialized weights to {args.out} ({fmt})", file=out)
    if args.json:
        _write(args.json, report.to_json(), "--json")
    if args.html:
        _init_html(args, before, model, batches[0], report, data, out)
    return EXIT_OK


def _stats(data: Any) -> dict | None:
    from initwise.report.profile import stats_profile

    return stats_profile(data.stats())


def _init_html(args: Any, before: nn.Module, after: nn.Module, batch: Any, report: Any,
               data: Any, out: TextIO) -> None:
    from initwise.doctor import doctor
    from initwise.report import Page, render_html
    from initwise.theory_points import phase_diagram, phase_points

    diag_before = doctor(before, batch, loss_fn=args.loss, checks="standard")
    diag_after = doctor(after, batch, loss_fn=args.loss, checks="standard")
    phase = phase_diagram(phase_points(after, batch[0]), phase_points(before, batch[0]))
    render_html(Page(init_report=report, before=diag_before, after=diag_after, phase=phase,
                     labels=("before init", "after init"), data_stats=_stats(data)), args.html)
    print(f"wrote {args.html}", file=out)


def run_gains(args: Any, out: TextIO | None = None) -> int:
    """``initwise gains``: initwise's gain next to torch's ``calculate_gain`` per activation."""
    out = out or sys.stdout
    from initwise.schemes.gains import format_gain_table, gain_table

    table = gain_table()
    if args.json:
        print(json.dumps(_plain(table), indent=2), file=out)
    else:
        print(format_gain_table(table), file=out)
    return EXIT_OK


def run_theory(args: Any, out: TextIO | None = None) -> int:
    """``initwise theory``: mean-field facts for one activation at (sigma_w, sigma_b)."""
    out = out or sys.stdout
    from initwise.theory.summary import format_theory_summary, theory_summary

    kwargs: dict[str, Any] = {"sigma_b": args.sigma_b, "depth": args.depth}
    if args.sigma_w is not None:
        kwargs["sigma_w"] = args.sigma_w
    summary = theory_summary(args.activation, **kwargs)
    if args.json:
        print(json.dumps(_plain(summary), indent=2), file=out)
    else:
        print(format_theory_summary(summary), file=out)
    return EXIT_OK


def _plain(x: Any) -> Any:
    import dataclasses
    import math

    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return _plain(dataclasses.asdict(x))
    if hasattr(x, "to_dict"):
        return _plain(x.to_dict())
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, float):
        return x if math.isfinite(x) else str(x)
    if hasattr(x, "item") and callable(x.item):
        return _plain(x.item())
    return x


def _color(out: TextIO) -> bool:
    import os

    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return bool(getattr(out, "isatty", lambda: False)())
