"""build_model: the configured method built around the configured backbone (faerec.models.registry)."""

from __future__ import annotations

import torch
from torch import nn

from faerec.errors import FaerecError
from faerec.models.config import ModelConfig
from faerec.models.inputs import ModelInputs
from faerec.models.registry import backbone_spec, method_spec


def _check_table(name: str, table: torch.Tensor | None, rows: int, cols: int | None) -> None:
    if table is None:
        return
    if table.dim() != (1 if cols is None else 2) or table.shape[0] != rows or (cols and table.shape[1] != cols):
        want = f"[{rows}]" if cols is None else f"[{rows}, {cols or 'd'}]"
        raise FaerecError(f"{name} has shape {list(table.shape)}, expected {want} (n_items + 1 rows, row 0 = padding)")
    if table.is_floating_point() and not torch.isfinite(table).all():
        raise FaerecError(f"{name} contains NaN or infinite values")


def build_model(
    cfg: ModelConfig,
    n_items: int,
    llm_table: torch.Tensor | None,
    pca_init: torch.Tensor | None,
    train_count: torch.Tensor,
    dataset=None,
) -> nn.Module:
    """Build ``cfg.method`` around ``cfg.backbone`` for items 1..n_items (0 = padding).

    llm_table: [n_items + 1, d_llm] frozen LLM embeddings, required by methods with ``needs_text`` and
    ignored by the others. pca_init: [n_items + 1, hidden] PCA of llm_table; None computes it where needed.
    train_count: [n_items + 1] training-part popularity. dataset: the training data, for methods that read
    users' sequences. LLM table and counts are non-persistent buffers: not in ``state_dict()``; pass them
    again when rebuilding.
    """
    if n_items < 1:
        raise FaerecError(f"n_items must be >= 1, got {n_items}")
    method = method_spec(cfg.method)
    _check_table("train_count", train_count, n_items + 1, None)
    if method.needs_text:
        if llm_table is None:
            raise FaerecError(f"method {cfg.method!r} needs the LLM item embeddings (llm_table); run `faerec embed`")
        _check_table("llm_table", llm_table, n_items + 1, 0)
        _check_table("pca_init", pca_init, n_items + 1, cfg.hidden)
    else:
        llm_table = pca_init = None
    backbone_cls = backbone_spec(cfg.backbone).cls
    inputs = ModelInputs(n_items, train_count, llm_table, pca_init, dataset)
    return method.build(cfg, lambda: backbone_cls(cfg), inputs)
