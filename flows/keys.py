"""Stable cache keys for the flow tasks: fingerprints of what a stage reads, never its in-memory data.

- prepare: the source name, the filter settings and the raw files' names, sizes and mtimes (a local folder);
- embed: the dataset's catalogue fingerprint, the encoder spec (its fingerprint names the output) and PCA size;
- train: the dataset's interaction and catalogue fingerprints, the encoder, and the hash of the train config;
A key only says "this was done"; each task's output is also checked on disk before a cached result is
trusted (flows.tasks.cached), so a deleted folder is rebuilt instead of being reported as done.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from faerec import __version__
from faerec.data import folder
from faerec.hashing import digest


def files_signature(folder: Path) -> list[tuple[str, int, int]]:
    """(name, size, mtime_ns) of the files directly in ``folder``: cheap, and changes when a file is rewritten."""
    return sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file())


def prepare_key(source: str, min_user: int, min_item: int) -> str:
    path = Path(source)
    raw = files_signature(path) if path.is_dir() else None
    return "prepare-" + digest({"source": source, "resolved": str(path.resolve()) if raw is not None else None,
                                "raw": raw, "min_user": min_user, "min_item": min_item, "version": __version__})


def dataset_fingerprints(dataset_dir: str | Path) -> dict[str, Any]:
    """The fingerprints prepare recorded (faerec.data.folder), which the downstream keys depend on."""
    return folder.fingerprints(dataset_dir)


def embed_key(dataset_dir: str, encoder: str, pca_dim: int) -> str:
    return "embed-" + digest({"dataset": dataset_fingerprints(dataset_dir), "path": str(Path(dataset_dir).resolve()),
                              "encoder": encoder, "pca_dim": pca_dim, "version": __version__})


def train_key(dataset_dir: str, config: dict[str, Any], run_dir: str) -> str:
    return "train-" + digest({"dataset": dataset_fingerprints(dataset_dir), "config": config,
                              "run_dir": str(Path(run_dir).resolve()), "version": __version__})
