"""JSON Schemas (draft 2020-12) of the JSON that ``initwise`` writes.

* :data:`DIAGNOSIS_SCHEMA` -- ``Diagnosis.to_json()`` (``initwise doctor --json``);
* :data:`INIT_REPORT_SCHEMA` -- ``InitReport.to_json()`` (``initwise init --json``);
* :data:`DEMO_SCHEMA` -- ``initwise demo --json``.

Non-finite floats follow :mod:`initwise.jsonio`: NaN is ``null``, +-inf the strings ``"inf"`` /
``"-inf"`` (the demo's JSON writes every non-finite float as ``null``). :func:`validate` checks a
parsed document with the ``jsonschema`` package (``pip install jsonschema``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["DEMO_SCHEMA", "DIAGNOSIS_SCHEMA", "INIT_REPORT_SCHEMA", "validate"]

_NUM = {"type": ["number", "null"]}
# initwise.jsonio writes +-inf as the strings "inf" / "-inf" (NaN as null).
_NUM_INF = {"anyOf": [{"type": ["number", "null"]}, {"enum": ["inf", "-inf"]}]}
_INT = {"type": ["integer", "null"]}
_STR = {"type": "string"}

_FINDING = {
    "type": "object",
    "required": ["check", "severity", "where", "evidence", "why", "fix", "fix_code", "metrics"],
    "properties": {
        "check": {"type": "string", "pattern": r"^[a-z0-9_]+(\.[a-z0-9_]+)*$"},
        "severity": {"enum": ["error", "warning", "info"]},
        "where": {"type": "string", "minLength": 1},
        "evidence": {"type": "string", "minLength": 1},
        "why": _STR,
        "fix": {"type": "string", "minLength": 1},
        "fix_code": _STR,
        "metrics": {"type": "object"},
        "automatic": {"type": "boolean"},
        "fix_id": {"type": ["string", "null"]},
        "step": _INT,
    },
}

_LAYER_STATS = {
    "type": "object",
    "required": ["name", "kind"],
    "properties": {
        "name": _STR, "kind": _STR, "order": _INT, "activation": {"type": ["string", "null"]},
        "units": _INT, "calls": _INT, "pre_std": _NUM_INF, "rms": _NUM_INF,
        "post_std": _NUM_INF, "signal_fraction": _NUM_INF,
        "active_fraction": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "saturated_fraction": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "dead_units": {"type": ["integer", "null"], "minimum": 0}, "grad_norm": _NUM_INF,
        "weight_norm": _NUM_INF, "update_ratio": _NUM_INF,
        "followed_by_norm": {"type": ["string", "null"]}, "residual": {"type": "boolean"},
        "is_output": {"type": "boolean"}, "nonfinite": {"type": "integer", "minimum": 0},
        "dtype": _STR,
    },
}

DIAGNOSIS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "initwise.diagnosis",
    "title": "initwise doctor diagnosis",
    "type": "object",
    "required": ["schema", "findings", "layers", "data_profile", "skipped", "preset", "ok",
                 "codes"],
    "properties": {
        "schema": {"const": "initwise.diagnosis/1"},
        "findings": {"type": "array", "items": _FINDING},
        "layers": {"type": "array", "items": _LAYER_STATS},
        "data_profile": {"type": "object"},
        "skipped": {"type": "array", "items": {"type": "string"}},
        "preset": {"type": "string"},
        "ok": {"type": "boolean"},
        "codes": {"type": "array", "items": {"type": "string"}},
        "counts": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}},
        "summary": {"type": "object"},
    },
}

_PARAM = {
    "type": "object",
    "required": ["name", "module", "module_type", "scheme"],
    "properties": {
        "name": _STR, "module": _STR, "module_type": _STR, "scheme": _STR,
        "fan_in": _INT, "fan_out": _INT, "gain": _NUM_INF, "std": _NUM_INF, "note": _STR,
    },
    "additionalProperties": False,
}

_CALIB = {
    "type": "object",
    "required": ["module", "module_type", "scale_before", "scale_after", "iterations",
                 "converged"],
    "properties": {
        "module": _STR, "module_type": _STR, "scale_before": _NUM_INF,
        "scale_after": _NUM_INF,
        "target_std": _NUM_INF, "pre_std": _NUM_INF, "active_fraction": _NUM_INF,
        "saturated_fraction": _NUM_INF, "iterations": {"type": "integer", "minimum": 0},
        "converged": {"type": "boolean"}, "note": _STR,
    },
    "additionalProperties": False,
}

_LOSS = {
    "type": ["object", "null"],
    "required": ["kind", "before", "after", "target"],
    "properties": {"kind": {"enum": ["ce", "bce", "mse"]}, "before": _NUM_INF,
                   "after": _NUM_INF, "target": _NUM_INF, "output_source": _STR,
                   "held_out": _NUM_INF, "expected": _NUM_INF},
}

INIT_REPORT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "initwise.initreport",
    "title": "initwise InitReport",
    "type": "object",
    "required": ["schema", "params", "layers", "loss", "warnings", "policy", "seed"],
    "properties": {
        "schema": {"const": "initwise.initreport/1"},
        "params": {"type": "array", "items": _PARAM},
        "layers": {"type": "array", "items": _CALIB},
        "loss": _LOSS,
        "warnings": {"type": "array", "items": _STR},
        "policy": _STR,
        "seed": _INT,
        "policy_reason": _STR,
    },
    "additionalProperties": False,
}

_RUN = {
    "type": "object",
    "required": ["initial_loss", "dead_fraction", "test_accuracy", "final_train_loss"],
    "properties": {"initial_loss": _NUM, "dead_fraction": _NUM, "test_accuracy": _NUM,
                   "final_train_loss": _NUM, "train_seconds": _NUM},
}

DEMO_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "initwise.demo",
    "title": "initwise demo results",
    "type": "object",
    "required": ["schema", "data", "model", "label_prior_loss", "runs", "seed", "epochs"],
    "properties": {
        "schema": {"const": "initwise.demo/2"},
        "data": {"type": "object", "required": ["name", "n_train", "n_test", "n_features"]},
        "model": _STR,
        "label_prior_loss": _NUM,
        "runs": {"type": "object", "required": ["torch default", "initwise.init",
                                                "torch default + monitor repair"],
                 "additionalProperties": _RUN},
        "monitor": {"type": "array", "items": {
            "type": "object", "required": ["run", "step", "kind", "label"],
            "properties": {"run": _STR, "step": {"type": "integer"},
                           "kind": {"enum": ["finding", "repair"]}, "label": _STR}}},
        "seed": {"type": "integer"},
        "epochs": {"type": "integer", "minimum": 1},
        "optimizer": _STR,
        "wall_seconds": _NUM,
    },
}

_SCHEMAS = {"diagnosis": DIAGNOSIS_SCHEMA, "initreport": INIT_REPORT_SCHEMA, "demo": DEMO_SCHEMA}


def validate(document: Any, kind: str) -> None:
    """Validate a parsed JSON document against one of the schemas.

    Args:
        document: the parsed JSON (``json.loads`` output).
        kind: ``"diagnosis"``, ``"initreport"`` or ``"demo"``.

    Raises:
        ValueError: for an unknown ``kind``.
        ImportError: if ``jsonschema`` is not installed.
        jsonschema.ValidationError: if the document does not conform.
    """
    if kind not in _SCHEMAS:
        raise ValueError(f"validate: kind {kind!r} is not one of {sorted(_SCHEMAS)}")
    try:
        import jsonschema
    except ImportError as exc:
        raise ImportError("validate: needs the jsonschema package (pip install jsonschema)") \
            from exc
    jsonschema.Draft202012Validator(_SCHEMAS[kind]).validate(document)
