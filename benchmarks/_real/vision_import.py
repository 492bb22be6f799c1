"""Import torchvision's model code beside a CPU build of torch whose compiled ops it cannot load.

PyPI's ``torchvision==0.28.0`` for x86_64 (the only build on this machine's index) is linked
against torch's CUDA libraries (``libc10_cuda.so``, ``libtorch_cuda.so``). Beside the CPU build
``torch==2.13.0+cpu`` its ``_C.so`` does not load -- torchvision notices and marks its ops
missing -- but ``torchvision/_meta_registrations.py`` then registers fake kernels for
``torchvision::nms`` and ``torchvision::qnms`` unconditionally, so ``import torchvision``
raises ``RuntimeError: operator torchvision::nms does not exist``. Everything that imports it
fails too: ``import timm``, and ``transformers``' model classes (its ``image_utils`` imports
``torchvision.transforms`` whenever torchvision is installed).

:func:`import_torchvision` declares those two operator schemas (no kernels) when, and only
when, that exact failure happens, and imports torchvision again: the model code (pure Python)
then works, while calling a compiled op raises torchvision's own "Couldn't load custom C++
ops" error. Import this module before ``transformers`` and ``timm``.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

import torch

# The schemas declared here (a documented module-level registration: the Library object must
# stay alive for the operators to exist).
_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_LIBRARY: list[torch.library.Library] = []
STATUS: dict[str, str] = {}


def import_torchvision() -> ModuleType | None:
    """torchvision, importable for its model code; ``None`` if it is not installed.

    ``STATUS["torchvision"]`` says what happened: ``"ok"`` (ops loaded), ``"model code only
    (compiled ops not loadable: ...)"``, or ``"not installed"``.

    Raises:
        RuntimeError: any import failure other than the missing-operator one above.
    """
    if importlib.util.find_spec("torchvision") is None:
        STATUS["torchvision"] = "not installed"
        return None
    try:
        import torchvision
    except RuntimeError as exc:
        if "torchvision::nms" not in str(exc) or _LIBRARY:
            raise
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        lib = torch.library.Library("torchvision", "DEF")
        for schema in _SCHEMAS:
            lib.define(schema)
        _LIBRARY.append(lib)
        import torchvision
    if torchvision.extension._has_ops():
        STATUS["torchvision"] = f"ok ({torchvision.__version__}, compiled ops loaded)"
    else:
        STATUS["torchvision"] = (f"model code only ({torchvision.__version__}: its compiled ops "
                                 f"do not load beside torch {torch.__version__})")
    return torchvision
