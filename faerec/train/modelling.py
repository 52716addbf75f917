"""Build the model a TrainConfig describes for a dataset, loading the LLM embeddings FAERec needs."""

from __future__ import annotations

import numpy as np
import torch

from faerec.data.dataset import Dataset
from faerec.errors import FaerecError
from faerec.models import build_model
from faerec.train.config import TrainConfig


def item_side_inputs(dataset: Dataset, cfg: TrainConfig) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(llm_table [n+1, d], pca_init [n+1, hidden]) for FAERec; (None, None) for the base method."""
    if cfg.model.method == "base":
        return None, None
    from faerec.text.store import load_embeddings, load_pca  # only FAERec needs the text stage

    table, _fingerprint = load_embeddings(dataset.path, encoder=cfg.encoder)
    pca = load_pca(dataset.path, dim=cfg.model.hidden, encoder=cfg.encoder)
    for name, array, width in (("embeddings", table, None), ("PCA", pca, cfg.model.hidden)):
        if array.shape[0] != dataset.n_items + 1 or (width is not None and array.shape[1] != width):
            raise FaerecError(
                f"{name} for encoder {cfg.encoder!r} have shape {array.shape}, expected "
                f"({dataset.n_items + 1}, {width or 'd'}); re-run `faerec embed`",
                path=dataset.path,
            )
    return (torch.from_numpy(np.ascontiguousarray(table, dtype=np.float32)),
            torch.from_numpy(np.ascontiguousarray(pca, dtype=np.float32)))


def model_for(dataset: Dataset, cfg: TrainConfig) -> torch.nn.Module:
    """A freshly initialised model (seed the RNGs first for a reproducible initialisation)."""
    llm_table, pca_init = item_side_inputs(dataset, cfg)
    train_count = torch.from_numpy(dataset.train_count.astype(np.int64))
    return build_model(cfg.model, dataset.n_items, llm_table, pca_init, train_count)
