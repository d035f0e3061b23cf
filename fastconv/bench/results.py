"""Results files: assemble one run's document, write it, read and validate any number of them."""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .schema import SCHEMA_VERSION, validate


def document(
    machine: dict[str, Any],
    software: dict[str, Any],
    settings: dict[str, Any],
    ceilings: list[dict[str, Any]],
    results: list[dict[str, Any]],
    command: str,
    note: str = "",
) -> dict[str, Any]:
    """One run as a results document (validated before it is returned)."""
    doc = {
        "schema_version": SCHEMA_VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "note": note,
        "machine": machine,
        "software": software,
        "settings": settings,
        "ceilings": ceilings,
        "results": results,
    }
    validate(doc, "the new results")
    return doc


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "machine"


def default_path(doc: dict[str, Any], out_dir: Path) -> Path:
    """bench_results/<machine>-<suites>-<UTC time>.json"""
    stamp = doc["created"][:19].replace(":", "").replace("-", "")
    suites = "-".join(doc["settings"]["suites"]) or "cases"
    return out_dir / f"{slug(doc['machine']['label'])}-{slug(suites)}-{stamp}.json"


def save(doc: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return path


def load(path: Path) -> dict[str, Any]:
    """Read one results file; ValueError naming the file when it is not valid JSON or breaks the schema."""
    try:
        doc = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON ({exc})") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read it ({exc.strerror})") from None
    validate(doc, str(path))
    return doc


def load_all(paths: Sequence[Path]) -> tuple[list[Path], list[dict[str, Any]], list[Path]]:
    """Read results files: (their paths, their documents, the files skipped). A directory stands for the *.json
    files in it that are results files (they carry "schema_version"); its other JSON files (other tools' outputs
    in bench_results/) are skipped. A file named explicitly must be a valid results file."""
    files: list[Path] = []
    skipped: list[Path] = []
    for p in map(Path, paths):
        if not p.is_dir():
            files.append(p)
            continue
        for f in sorted(p.glob("*.json")):
            try:
                is_results = "schema_version" in json.loads(f.read_text())
            except (json.JSONDecodeError, TypeError, OSError):
                is_results = False
            (files if is_results else skipped).append(f)
    if not files:
        raise ValueError(f"no results files in {', '.join(map(str, paths))}")
    return files, [load(f) for f in files], skipped
