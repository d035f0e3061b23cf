"""The results file: a JSON document, schema version 1, described by SCHEMA (a JSON Schema, draft 2020-12).

`validate` checks a document against it with a small validator of our own (the keywords SCHEMA uses: type, enum,
const, required, properties, additionalProperties, items, minimum), so reading results needs no extra package;
the tests check that it agrees with the `jsonschema` package. A new incompatible layout gets a new version.
bench_results/README.md documents every field in words.
"""

from __future__ import annotations

from typing import Any

SCHEMA_VERSION = 1

_STR, _INT, _NUM, _BOOL = {"type": "string"}, {"type": "integer"}, {"type": "number"}, {"type": "boolean"}
_OPT_STR, _OPT_INT, _OPT_BOOL = ({"type": [t, "null"]} for t in ("string", "integer", "boolean"))


def _obj(props: dict[str, Any], required: list[str] | None = None, extra: bool = False) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": props,
        "required": list(props) if required is None else required,
        "additionalProperties": extra,
    }


_MACHINE = _obj(
    {
        "label": _STR,
        "hostname": _STR,
        "os": _STR,
        "memory_bytes": _OPT_INT,
        "cpu": _obj(
            {
                "model": _STR,
                "id": _STR,
                "logical_cores": _INT,
                "usable_cores": _INT,
                "isa": {"type": "array", "items": _STR},
                "l2_bytes": _OPT_INT,
                "l3_bytes": _OPT_INT,
            }
        ),
        "gpus": {
            "type": "array",
            "items": _obj(
                {
                    "name": _STR,
                    "memory_bytes": _INT,
                    "compute_capability": _STR,
                    "driver": _OPT_STR,
                    "cuda_runtime": _OPT_STR,
                }
            ),
        },
        "env": {"type": "object", "additionalProperties": _OPT_STR},
    }
)
_SOFTWARE = _obj(
    {
        "fastconv": _STR,
        "git_sha": _OPT_STR,
        "git_dirty": _OPT_BOOL,
        "python": _STR,
        "numpy": _STR,
        "blas": _OPT_STR,
        "numba": _OPT_STR,
        "cupy": _OPT_STR,
        "torch": _OPT_STR,
    }
)
_SETTINGS = _obj(
    {
        "suites": {"type": "array", "items": _STR},
        "ops": {"type": "array", "items": _STR},
        "dtype": {"enum": ["float32", "float64"]},
        "threads": {"type": "array", "items": _INT},
        "batch": _OPT_INT,
        "warmup": _INT,
        "min_repeats": _INT,
        "min_time_s": _NUM,
        "max_time_s": _NUM,
        "rotate_bytes": _INT,
    }
)
_CEILING = _obj(
    {
        "name": {"enum": ["sgemm", "dgemm", "bf16gemm", "copy", "gpu_copy", "gpu_sgemm", "gpu_dgemm"]},
        "device": {"enum": ["cpu", "gpu"]},
        "threads": _OPT_INT,
        "env": {"enum": ["clean", "inherited", "device"]},
        "value": {"type": "number", "minimum": 0},
        "median": {"type": "number", "minimum": 0},
        "unit": {"enum": ["GFLOP/s", "GB/s"]},
        "how": _STR,
    }
)
_TIME = _obj(
    {
        "median": {"type": "number", "minimum": 0},
        "min": {"type": "number", "minimum": 0},
        "max": {"type": "number", "minimum": 0},
        "repeats": {"type": "integer", "minimum": 1},
    }
)
_RESULT = _obj(
    {
        "case": _STR,
        "descriptor": _STR,
        "op": {"enum": ["fwd", "bwd-data", "bwd-weight", "pool-fwd", "pool-bwd", "bn-fwd", "bn-bwd"]},
        "impl": _STR,
        "kind": {"enum": ["fastconv", "baseline"]},
        "backend": _STR,
        "algo": _STR,
        "selected_algo": _OPT_STR,
        "device": {"enum": ["cpu", "gpu"]},
        "dtype": {"enum": ["float32", "float64"]},
        "threads": _INT,
        "flops": {"type": "integer", "minimum": 0},
        "bytes": {"type": "integer", "minimum": 0},
        "status": {"enum": ["ok", "wrong", "error", "unsupported"]},
        "message": _OPT_STR,
        "max_rel_err": {"type": ["number", "null"]},
        "tolerance": _NUM,
        "copies": {"type": "integer", "minimum": 1},
        "time_s": {"anyOf": [_TIME, {"type": "null"}]},
        "precision": {"enum": ["fp32", "bf16", "tf32"]},
    },
    required=[
        "case",
        "descriptor",
        "op",
        "impl",
        "kind",
        "backend",
        "algo",
        "selected_algo",
        "device",
        "dtype",
        "threads",
        "flops",
        "bytes",
        "status",
        "message",
        "max_rel_err",
        "tolerance",
        "copies",
        "time_s",
    ],  # precision: absent in files written before it existed (read as "fp32")
)

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://fastconv.invalid/bench-results-v1.json",
    "title": "fastconv bench results",
    **_obj(
        {
            "schema_version": {"const": SCHEMA_VERSION},
            "created": _STR,
            "command": _STR,
            "note": _STR,
            "machine": _MACHINE,
            "software": _SOFTWARE,
            "settings": _SETTINGS,
            "ceilings": {"type": "array", "items": _CEILING},
            "results": {"type": "array", "items": _RESULT},
        }
    ),
}

_TYPES = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "object": dict,
    "array": list,
    "null": type(None),
}


def _is(value: Any, type_name: str) -> bool:
    if type_name in ("integer", "number") and isinstance(value, bool):
        return False
    if type_name == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES[type_name])


def errors(doc: Any, schema: dict[str, Any] = SCHEMA, path: str = "$") -> list[str]:
    """Every place where `doc` breaks `schema`, as 'path: what' lines (empty when it conforms)."""
    if "anyOf" in schema:
        if all(errors(doc, s, path) for s in schema["anyOf"]):
            return [f"{path}: matches none of the allowed forms"]
        return []
    if "const" in schema and doc != schema["const"]:
        return [f"{path}: must be {schema['const']!r}, got {doc!r}"]
    if "enum" in schema and doc not in schema["enum"]:
        return [f"{path}: must be one of {schema['enum']}, got {doc!r}"]
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else types
        if not any(_is(doc, t) for t in names):
            return [f"{path}: must be {' or '.join(names)}, got {type(doc).__name__} {doc!r:.60}"]
    if "minimum" in schema and isinstance(doc, (int, float)) and doc < schema["minimum"]:
        return [f"{path}: must be >= {schema['minimum']}, got {doc!r}"]
    found: list[str] = []
    if isinstance(doc, dict):
        props = schema.get("properties", {})
        found += [f"{path}: missing {key!r}" for key in schema.get("required", []) if key not in doc]
        for key, value in doc.items():
            if key in props:
                found += errors(value, props[key], f"{path}.{key}")
            elif schema.get("additionalProperties") is False:
                found.append(f"{path}: unexpected {key!r}")
            elif isinstance(schema.get("additionalProperties"), dict):
                found += errors(value, schema["additionalProperties"], f"{path}.{key}")
    if isinstance(doc, list) and "items" in schema:
        for i, item in enumerate(doc):
            found += errors(item, schema["items"], f"{path}[{i}]")
    return found


def validate(doc: Any, where: str = "results") -> None:
    """Raise ValueError listing (up to 10 of) the places where `doc` breaks the schema."""
    found = errors(doc)
    if found:
        more = f"\n  ... and {len(found) - 10} more" if len(found) > 10 else ""
        raise ValueError(
            f"{where} is not a fastconv bench results file (schema version {SCHEMA_VERSION}):\n  "
            + "\n  ".join(found[:10])
            + more
        )
