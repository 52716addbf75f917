"""Build the model a TrainConfig describes for a dataset, with the LLM embeddings its method reads.

A run records which embeddings it was trained with (``embeddings_record``: encoder spec, encoder fingerprint
and the sha256 of the table); rebuilding a finished run checks them, so new LLM vectors are never silently
mixed with old weights after the dataset was re-embedded. The record covers the trained items' rows only
(1..n_items): candidate-only items added to the catalogue later (faerec.data.prepare) are rows after them,
so adding them keeps every existing run valid, and ``candidate_item_table`` scores them with such a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from faerec.data.dataset import Dataset
from faerec.device import resolve_device
from faerec.errors import FaerecError
from faerec.hashing import array_digest
from faerec.models import build_model, method_spec
from faerec.runs import checkpoint, folder
from faerec.runs.config import TrainConfig


@dataclass
class TextTables:
    llm_table: torch.Tensor  # float32 [n_items + 1, d]
    pca_init: torch.Tensor  # float32 [n_items + 1, hidden]
    record: dict[str, str]  # what config.json stores under "embeddings"


def text_tables(dataset: Dataset, cfg: TrainConfig) -> TextTables | None:
    """The LLM item table and its PCA for a method that reads text; None for the others."""
    if not method_spec(cfg.model.method).needs_text:
        return None
    from faerec.text.store import load_embeddings, load_pca  # only text methods need the text stage

    table, fingerprint = load_embeddings(dataset.path, encoder=cfg.encoder)
    pca = load_pca(dataset.path, dim=cfg.model.hidden, encoder=cfg.encoder)
    # the trained items' rows only (the loaders' default): candidate rows after them never reach training
    table, pca = table[: dataset.n_items + 1], pca[: dataset.n_items + 1]
    for name, array, width in (("embeddings", table, None), ("PCA", pca, cfg.model.hidden)):
        if array.shape[0] != dataset.n_items + 1 or (width is not None and array.shape[1] != width):
            raise FaerecError(
                f"{name} for encoder {cfg.encoder!r} have shape {array.shape}, expected "
                f"({dataset.n_items + 1}, {width or 'd'}); re-run `faerec embed`",
                path=dataset.path,
            )
    table = np.ascontiguousarray(table, dtype=np.float32)
    record = {"encoder": cfg.encoder, "fingerprint": fingerprint, "table_digest": array_digest(table)}
    return TextTables(torch.from_numpy(table), torch.from_numpy(np.ascontiguousarray(pca, dtype=np.float32)),
                      record)


def check_embeddings(recorded: dict[str, str] | None, current: TextTables | None, where) -> None:
    """Refuse to rebuild a run on embeddings other than those it was trained with."""
    if recorded is None or current is None:
        return
    if recorded.get("table_digest") != current.record["table_digest"]:
        raise FaerecError(
            f"the dataset was re-embedded since this run was trained: trained on {recorded.get('fingerprint')} "
            f"table {str(recorded.get('table_digest'))[:12]}, now {current.record['fingerprint']} table "
            f"{current.record['table_digest'][:12]}; retrain, or restore the embeddings it was trained with",
            path=where,
        )


def model_for(dataset: Dataset, cfg: TrainConfig, tables: TextTables | None = None) -> torch.nn.Module:
    """A freshly initialised model (seed the RNGs first for a reproducible initialisation)."""
    if tables is None:
        tables = text_tables(dataset, cfg)
    train_count = torch.from_numpy(dataset.train_count.astype(np.int64))
    llm, pca = (tables.llm_table, tables.pca_init) if tables is not None else (None, None)
    return build_model(cfg.model, dataset.n_items, llm, pca, train_count, dataset)


def candidate_count(dataset: Dataset) -> int:
    """How many candidate-only items (item_idx n_items + 1 .. n_items + C) the dataset's catalogue holds."""
    return int(dataset.stats.get("candidate_items", 0))


def candidate_text(dataset: Dataset, cfg: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(LLM rows [C, d], PCA rows [C, hidden]) of the candidate-only items, from the run's encoder; a table
    embedded before the candidates were added is an error that says to re-run `faerec embed`."""
    from faerec.text.store import load_embeddings, load_pca

    first = dataset.n_items + 1
    table, _ = load_embeddings(dataset.path, encoder=cfg.encoder, rows="all")
    pca = load_pca(dataset.path, dim=cfg.model.hidden, encoder=cfg.encoder, rows="all")
    return (torch.from_numpy(np.ascontiguousarray(table[first:], dtype=np.float32)),
            torch.from_numpy(np.ascontiguousarray(pca[first:], dtype=np.float32)))


@torch.no_grad()
def candidate_item_table(model: torch.nn.Module, dataset: Dataset, cfg: TrainConfig) -> torch.Tensor | None:
    """[C, D] inference rows of the candidate-only items, to append to ``model.item_table()``; None when the
    dataset has none or the run's method cannot represent an item from its text (``scores_new_items``)."""
    if candidate_count(dataset) == 0 or not method_spec(cfg.model.method).scores_new_items:
        return None
    if not hasattr(model, "candidate_table"):
        raise FaerecError(f"method {cfg.model.method!r} declares scores_new_items but its model has no "
                          "candidate_table (faerec.models.interface.ScoresNewItems)")
    llm_rows, pca_rows = candidate_text(dataset, cfg)
    device = next(model.parameters()).device
    return model.candidate_table(llm_rows.to(device), pca_rows.to(device)).float()


@dataclass
class TrainedRun:
    """A finished run rebuilt for inference: its config, dataset, best weights (eval mode) and LLM tables."""

    run_dir: Path
    cfg: TrainConfig
    dataset: Dataset
    model: torch.nn.Module
    device: torch.device
    best_epoch: int
    tables: TextTables | None


def load_trained_run(run_dir: str | Path, dataset_dir: str | Path | None = None,
                     device: str | None = None) -> TrainedRun:
    """Rebuild a finished run from config.json + best.pt, in eval mode, checking that the dataset's trained
    rows of the LLM table are still those it was trained with (candidates added since do not matter)."""
    run_dir = Path(run_dir)
    saved_dir, cfg = folder.read_config(run_dir)
    if device is not None:
        cfg = cfg.replace(device=device)
    dataset = Dataset.load(dataset_dir if dataset_dir is not None else saved_dir)
    best_path = run_dir / checkpoint.BEST
    if not best_path.exists():
        raise FaerecError("no best.pt: the run has not finished training (resume it with --resume)", path=run_dir)
    best = checkpoint.load(best_path)
    tables = text_tables(dataset, cfg)
    check_embeddings(folder.recorded_embeddings(run_dir), tables, run_dir)
    model = model_for(dataset, cfg, tables)
    try:
        model.load_state_dict(best["model"])
    except RuntimeError as exc:
        raise FaerecError(f"best.pt does not fit the configured model: {exc}", path=best_path) from None
    torch_device = resolve_device(cfg.device)
    model.to(torch_device).eval()
    return TrainedRun(run_dir, cfg, dataset, model, torch_device, int(best["epoch"]), tables)
