"""``python -m training.reexport [FOLDER ...]``: add ``model.onnx`` to versions exported before
ONNX, from their own ``model.pt`` (same weights, same version number).

Each FOLDER is a models folder (``models``: every ``<name>/<version>`` under it) or one
version folder (``models/cnn/1``); default ``models``. For each version: ``model.pt`` is
loaded (its sha256 checked), exported as ``training.export`` does (``training.onnx_export``:
the parity check on the 360 test rows must pass) and its manifest gains the ``onnx`` entry;
every other field of the manifest is kept as it is (read and written as plain JSON). A
version that already lists ``model.onnx`` is skipped unless ``--force``. Files are written
beside their final name and renamed into place.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path

from training.artifacts import load_artifact
from training.contract import MANIFEST_FILE, OnnxEntry
from training.data import load_split
from training.onnx_export import checked_onnx


def version_folders(folder: Path) -> list[Path]:
    """``folder`` itself if it holds a manifest, else its ``<name>/<version>`` folders."""
    if (folder / MANIFEST_FILE).is_file():
        return [folder]
    return sorted(
        version
        for name in folder.iterdir()
        if name.is_dir() and not name.name.startswith(".")
        for version in name.iterdir()
        if version.is_dir() and version.name.isdigit()
    )


def reexport(folder: Path, force: bool = False) -> OnnxEntry | None:
    """Write ``folder/model.onnx`` and its manifest entry; ``None`` when skipped (listed)."""
    manifest, module = load_artifact(folder)
    if manifest.onnx is not None and not force:
        return None
    entry, graph = checked_onnx(module, load_split().x_test)
    _replace(folder / entry.file, graph)
    raw = json.loads((folder / MANIFEST_FILE).read_text())
    raw["onnx"] = entry.model_dump(mode="json")
    _replace(folder / MANIFEST_FILE, json.dumps(raw, indent=2).encode())
    return entry


def _replace(path: Path, data: bytes) -> None:
    """Write ``data`` beside ``path`` and rename it into place."""
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_bytes(data)
    os.replace(staging, path)


def main(argv: Sequence[str] | None = None) -> int:
    """Re-export every version under the given folders; print one line per version."""
    parser = argparse.ArgumentParser(prog="python -m training.reexport", description=__doc__)
    parser.add_argument("folders", nargs="*", type=Path, default=[Path("models")])
    parser.add_argument("--force", action="store_true", help="re-export listed ones too")
    args = parser.parse_args(argv)
    for folder in [v for f in args.folders for v in version_folders(f)]:
        entry = reexport(folder, args.force)
        if entry is None:
            print(f"{folder}: lists model.onnx already (--force to redo)")
            continue
        p = entry.parity
        print(
            f"{folder}: model.onnx {entry.sha256[:12]}... opset {entry.opset}; "
            f"{p.rows} rows, argmax equal, max |dp| {p.max_abs_diff_probabilities:.2e}, "
            f"score rel {p.max_rel_diff_score:.2e}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
