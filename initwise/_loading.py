"""Loading what the command line names: a MODEL spec, weights, and a data FILE.

MODEL is one of

* ``path/to/file.py:factory`` -- the file is executed (like pytest imports a test file: any code at
  its top level runs) and ``factory(**model_kwargs)`` must return an ``nn.Module``;
* ``package.module:factory`` -- imported with :func:`importlib.import_module`;
* a TorchScript archive (``torch.jit.save``; ``.pt``, ``.pth``, ``.ts``, ``.jit``...);
* a ``torch.export`` archive (``.pt2``), loaded with :func:`torch.export.load` and turned into a
  module with ``ExportedProgram.module()``.

Every failure raises :class:`LoadError`, a ``ValueError`` whose one-line message names what failed
and how to fix it; the CLI prints it and exits with status 3.

torch (and ``initwise.data``, which imports it) is imported inside the functions that load
something, so that :func:`precheck` fails fast, before torch is imported; ``safetensors`` is an
optional extra, imported when a ``.safetensors`` file is given.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import shlex
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "LoadError",
    "load_data",
    "load_model",
    "load_weights",
    "parse_model_kwargs",
    "precheck",
    "static_batch_size",
]

_PT2 = (".pt2",)
_PY = (".py",)


class LoadError(ValueError):
    """A MODEL, weights or FILE argument could not be loaded (message says why and what to do)."""


def parse_model_kwargs(text: str | None) -> dict[str, Any]:
    """Parse ``--model-kwargs`` JSON into a dict (``None`` or ``""`` gives ``{}``).

    Raises:
        LoadError: if the text is not JSON or not a JSON object.

    Example:
        >>> parse_model_kwargs('{"depth": 12}')
        {'depth': 12}
    """
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LoadError(
            f"--model-kwargs: not valid JSON ({exc.msg} at character {exc.pos}): {text!r}; "
            f"write a JSON object, e.g. --model-kwargs '{{\"depth\": 12}}'"
        ) from None
    if not isinstance(value, dict):
        raise LoadError(
            f"--model-kwargs: expected a JSON object, got {type(value).__name__} {text!r}; "
            f"write e.g. --model-kwargs '{{\"depth\": 12}}'"
        )
    return value


def _split_spec(spec: str) -> tuple[str, str | None]:
    head, sep, tail = spec.rpartition(":")
    # "C:\\x.pt" (a drive letter) or "file.pt" (no colon): no factory part.
    if not sep or not head or "/" in tail or "\\" in tail or tail.endswith(_PY):
        return spec, None
    return head, tail


def _import_file(path: Path) -> Any:
    name = f"_initwise_user_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise LoadError(f"MODEL: cannot import {str(path)!r} as Python; name a .py file.")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)  # so the file can import its neighbours, as pytest does
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise LoadError(
            f"MODEL: running {str(path)!r} raised {type(exc).__name__}: {_one_line(exc)}; "
            f"fix the file (rerun with --debug for the traceback)"
        ) from exc
    finally:
        if sys.path and sys.path[0] == folder:
            sys.path.pop(0)
    return module


def _import_module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise LoadError(
            f"MODEL: no module named {exc.name!r} (from {name!r}); give a file as "
            f"path/to/file.py:factory or install the package"
        ) from exc
    except Exception as exc:
        raise LoadError(
            f"MODEL: importing {name!r} raised {type(exc).__name__}: {_one_line(exc)}; fix "
            f"the module (rerun with --debug for the traceback)"
        ) from exc


def _callables(module: Any) -> list[str]:
    names = [
        n for n, v in vars(module).items()
        if callable(v) and not n.startswith("_") and getattr(v, "__module__", None)
        == module.__name__
    ]
    return sorted(names)


def _from_factory(where: str, module: Any, factory: str, kwargs: dict[str, Any]) -> nn.Module:
    from torch import nn

    fn = getattr(module, factory, None)
    if fn is None or not callable(fn):
        known = ", ".join(_callables(module)) or "none"
        raise LoadError(
            f"MODEL: {where} has no callable {factory!r}; name one of the callables defined "
            f"there after the ':' ({known}), or add {factory!r} to it"
        )
    try:
        model = fn(**kwargs)
    except Exception as exc:
        hint = "check --model-kwargs, or fix" if kwargs or isinstance(exc, TypeError) else "fix"
        raise LoadError(
            f"MODEL: factory {where}:{factory} raised {type(exc).__name__}: "
            f"{_one_line(exc)}; {hint} the factory (rerun with --debug for the traceback)"
        ) from exc
    if not isinstance(model, nn.Module):
        raise LoadError(
            f"MODEL: factory {where}:{factory} returned {type(model).__name__}, not a "
            f"torch.nn.Module; make it return the model"
        )
    return model


def _from_archive(path: Path) -> nn.Module:
    import torch

    if path.suffix.lower() in _PT2:
        try:
            program = torch.export.load(str(path))
        except Exception as exc:
            raise LoadError(
                f"MODEL: {str(path)!r} is not a torch.export archive ({_one_line(exc)}); save "
                f"one with torch.export.save(torch.export.export(model, args), 'model.pt2')"
            ) from exc
        return program.module()
    try:
        return torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:
        raise LoadError(
            f"MODEL: {str(path)!r} is not a TorchScript archive ({_one_line(exc)}); a "
            f"checkpoint (state dict) needs the model's code: pass path/to/file.py:factory "
            f"--weights {path.name}"
        ) from exc


def _check_spec(spec: str, kwargs: dict[str, Any]) -> tuple[str, str | None, bool]:
    """Validate a MODEL spec without importing anything; returns (target, factory, is_file)."""
    target, factory = _split_spec(spec)
    if factory is None:
        path = Path(target)
        if path.suffix.lower() in _PY:
            raise LoadError(
                f"MODEL: {spec!r} names a Python file but no factory; write {spec}:make_model "
                f"(the function that returns the nn.Module)"
            )
        if not path.is_file():
            raise LoadError(
                f"MODEL: no such file {spec!r}; give path/to/file.py:factory, "
                f"package.module:factory, or a TorchScript/.pt2 file"
            )
        if kwargs:
            raise LoadError("--model-kwargs: only a factory takes keyword arguments; drop it "
                            "for an archive")
        return target, None, True
    is_file = target.endswith(_PY) or os.sep in target or "/" in target
    if is_file and not Path(target).is_file():
        raise LoadError(f"MODEL: no such file {target!r} (from {spec!r}); check the path "
                        f"(relative to {os.getcwd()!r}) or give package.module:factory")
    if not factory.isidentifier():
        raise LoadError(f"MODEL: {factory!r} (in {spec!r}) is not a Python name; write "
                        f"file.py:make_model")
    return target, factory, is_file


def _check_data_path(path: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise LoadError(f"--data: no such file {path!r}; give a svmlight, .npz, .npy, .csv or "
                        f".parquet file")
    if p.is_dir():
        raise LoadError(f"--data: {path!r} is a directory; give a file")
    return p


def precheck(args: Any) -> None:
    """Cheap checks of the command line before torch is imported (fast failures).

    Raises:
        LoadError: bad --model-kwargs JSON, missing MODEL / --data / --weights file, or an
            output (--out, --json, --html) in a folder that does not exist.
    """
    kwargs = parse_model_kwargs(getattr(args, "model_kwargs", None))
    if getattr(args, "model", None):
        _, factory, _ = _check_spec(args.model, kwargs)
        if factory is None and getattr(args, "verb", None) == "init":
            _refuse_export_init(args.model)
    if getattr(args, "data", None):
        _check_data_path(args.data)
    if getattr(args, "weights", None) and not Path(args.weights).is_file():
        raise LoadError(f"--weights: no such file {args.weights!r}; check the path or drop "
                        f"--weights")
    if getattr(args, "verb", None) == "init":
        check_out(args.out)
    reports = ["json", "html"] + (["out"] if getattr(args, "verb", None) == "demo" else [])
    for option in reports:
        value = getattr(args, option, None)
        if isinstance(value, str) and not Path(value).resolve().parent.is_dir():
            raise LoadError(f"--{option}: the folder of {value!r} does not exist; create it "
                            f"first or give another path")


def _refuse_export_init(spec: str) -> None:
    if Path(spec).suffix.lower() not in _PT2:
        return
    raise LoadError(
        f"MODEL: {spec!r} is a torch.export program, which initwise init cannot initialize: "
        f"torch inlines its layers into one graph of aten operations (no nn.Linear / nn.Conv "
        f"modules are left to hook and calibrate) and refuses train()/eval() on it (the mode "
        f"is fixed at export time); give the model's code (file.py:factory, with --weights for "
        f"a checkpoint) and export after init, or diagnose the .pt2 as it is with initwise "
        f"doctor"
    )


def static_batch_size(model: nn.Module) -> int | None:
    """The batch size a ``torch.export`` module was exported with, if it is static.

    A program exported without ``dynamic_shapes`` guards its inputs' sizes: any other batch
    size fails with ``Guard failed: input.size()[0] == N``.

    Returns:
        ``N`` when the first input's leading dimension is fixed, else ``None`` (a dynamic batch,
        or a model that is no exported program).
    """
    import torch

    if not isinstance(model, torch.fx.GraphModule):
        return None
    for node in model.graph.nodes:
        if node.op == "placeholder":
            shape = getattr(node.meta.get("val"), "shape", None)
            if shape is not None and len(shape) and isinstance(shape[0], int):
                return int(shape[0])
            return None
    return None


OUT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")


def check_out(path: str) -> str:
    """Validate ``init --out``: a known extension in an existing folder; returns the suffix.

    Raises:
        LoadError: unknown extension or missing folder.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in OUT_SUFFIXES:
        raise LoadError(
            f"--out: unsupported extension {suffix or '(none)'!r} in {path!r}; use "
            f".safetensors or .pt"
        )
    if not Path(path).resolve().parent.is_dir():
        raise LoadError(f"--out: the folder of {path!r} does not exist; create it first")
    return suffix


def load_model(spec: str, kwargs: dict[str, Any] | None = None) -> nn.Module:
    """Build the model named by a MODEL spec (see the module docstring).

    Args:
        spec: ``file.py:factory``, ``package.module:factory``, or a TorchScript/``.pt2`` path.
        kwargs: keyword arguments for the factory (default none).

    Returns:
        The model, in training mode as the factory left it.

    Raises:
        LoadError: naming what failed (missing file, unknown factory, factory raised, not a
            module, not an archive) and the remedy.
    """
    kwargs = dict(kwargs or {})
    target, factory, is_file = _check_spec(spec, kwargs)
    if factory is None:
        return _from_archive(Path(target))
    module = _import_file(Path(target)) if is_file else _import_module(target)
    return _from_factory(target, module, factory, kwargs)


def load_weights(model: nn.Module, path: str) -> None:
    """Load a checkpoint into ``model`` (``.safetensors``, or ``torch.load(weights_only=True)``).

    A dict with a ``"state_dict"`` or ``"model"`` entry (Lightning / common trainers) is unwrapped.

    Raises:
        LoadError: missing file, unreadable checkpoint, or keys/shapes that do not fit the model.
    """
    import torch

    p = Path(path)
    if not p.is_file():
        raise LoadError(f"--weights: no such file {path!r}; check the path or drop --weights")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(p))
        else:
            state = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as exc:
        if "Weights only load failed" in str(exc):
            found = re.search(r"GLOBAL ([\w.]+)", str(exc))
            what = f"the global {found.group(1)}" if found else "not a plain state dict"
            raise LoadError(
                f"--weights: cannot read {path!r}: it holds pickled Python objects beyond "
                f"tensors ({what}), "
                f"which initwise never unpickles (torch.load(weights_only=True): unpickling can "
                f"run code); save a plain state dict with torch.save(model.state_dict(), path) "
                f"or safetensors"
            ) from exc
        raise LoadError(
            f"--weights: cannot read {path!r} ({_one_line(exc)}); save a state dict with "
            f"torch.save(model.state_dict(), path) or safetensors"
        ) from exc
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise LoadError(f"--weights: {path!r} holds a {type(state).__name__}, not a state "
                        f"dict; save one with torch.save(model.state_dict(), path)")
    try:
        model.load_state_dict(state)
    except Exception as exc:
        raise LoadError(
            f"--weights: {path!r} does not fit the model: {_one_line(exc)}; build the model "
            f"the checkpoint was saved from (same factory and --model-kwargs)"
        ) from exc


def load_data(
    path: str,
    target: str | None = None,
    *,
    zero_based: bool | str = "auto",
    delimiter: str | None = None,
    no_target: bool | None = None,
    notes: list[str] | None = None,
) -> Any:
    """Read a data FILE with :func:`initwise.data.load` (svmlight, npz, npy, csv, parquet).

    The reader's own decisions (:class:`~initwise.data.DataWarning`: an svmlight file read
    1-based, a sniffed CSV delimiter) become notes in command-line words: appended to ``notes``
    when given, else re-issued as warnings. A table read without ``--target`` that has a
    label-like column is refused, unless ``no_target`` (``--no-target``) says every column is
    a feature: a label read as a feature makes a model look healthy on leaked data.

    Args:
        path: the file.
        target: ``--target`` (for ``.npy`` a column index, e.g. ``"-1"``), or ``None``.
        zero_based: ``--zero-based`` (True) / ``--one-based`` (False) / ``"auto"``.
        delimiter: ``--delimiter``, or ``None`` (sniffed).
        no_target: ``--no-target``: the file has no target column; ``None`` (default) for a
            verb without that option (the refusal then names ``--target`` only).
        notes: a list to collect the notes in, or ``None``.

    Raises:
        LoadError: missing file, unreadable or unknown format, unknown target column, a
            label-like column without ``--target`` or ``--no-target``.
    """
    from initwise.data.load import DataWarning, load  # load.py's own import of it

    p = _check_data_path(path)
    if isinstance(target, str) and p.suffix.lower() == ".npy" and target.lstrip("-").isdigit():
        target = int(target)  # .npy has no column names: --target is an index
    options: dict[str, Any] = {"target": target}
    if zero_based != "auto":
        options["zero_based"] = zero_based
    if delimiter is not None:
        options["delimiter"] = delimiter
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DataWarning)
            data = load(str(p), **options)
    except (ValueError, TypeError, KeyError, OSError, ImportError) as exc:
        raise LoadError(f"--data: cannot read {path!r}: {_cli_words(_one_line(exc))}") from exc
    for w in caught:
        if not isinstance(w.message, DataWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        elif w.message.kind == "label_column":
            if not no_target:
                _refuse_label_column(path, w.message, no_target is not None)
        else:
            said = DataWarning(w.message.path, w.message.kind, w.message.problem,
                               _cli_words(w.message.remedy), column=w.message.column)
            if notes is None:
                warnings.warn(said, stacklevel=2)
            else:
                notes.append(str(said))
    return data


def _refuse_label_column(path: str, warning: Any, has_no_target: bool) -> None:
    column = shlex.quote(warning.column)
    other = ", or --no-target if the file has no target column" if has_no_target else ""
    raise LoadError(
        f"--data: {path!r}: {warning.problem}; pass --target {column} to use it as the "
        f"target{other}"
    )


# initwise.data speaks Python (keyword arguments); on the command line they are options.
_CLI_WORDS = (
    ("as target=", "with --target COL"),
    ("zero_based: ", "--zero-based/--one-based: "),
    ("delimiter: ", "--delimiter: "),
    ("zero_based=True", "--zero-based"),
    ("zero_based=False", "--one-based"),
    ("delimiter=", "--delimiter "),
    ("target=", "--target "),
)


def _cli_words(text: str) -> str:
    for python, option in _CLI_WORDS:
        text = text.replace(python, option)
    return text


def _one_line(exc: BaseException) -> str:
    text = str(exc) if str(exc) else type(exc).__name__
    if isinstance(exc, KeyError) and exc.args:
        text = str(exc.args[0])
    return " ".join(text.split())
