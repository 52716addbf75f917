"""Build the model a TrainConfig describes for a dataset, with the LLM embeddings its method reads.

A run records which embeddings it was trained with (``embeddings_record``: encoder spec, encoder fingerprint
and the sha256 of the table); rebuilding a finished run checks them, so new LLM vectors are never silently
mixed with old weights after the dataset was re-embedded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from faerec.data.dataset import Dataset
from faerec.errors import FaerecError
from faerec.hashing import array_digest
from faerec.models import build_model, method_spec
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
