"""PCA of the LLM item table, for the ID-embedding initialisation when the caller has none precomputed."""

from __future__ import annotations

import torch

from faerec.errors import FaerecError


def pca_scores(llm_table: torch.Tensor, dim: int) -> torch.Tensor:
    """[n_items + 1, d_llm] (row 0 padding) -> [n_items + 1, dim] principal-component scores of rows 1..n,
    centred as ``sklearn.decomposition.PCA(dim).fit_transform`` (no whitening); row 0 zero. Each component's
    sign is fixed so that its largest-magnitude loading is positive, which makes the result deterministic."""
    items = llm_table[1:].double()
    if dim > min(items.shape):
        raise FaerecError(f"PCA to {dim} dimensions needs at least {dim} items and LLM dimensions, "
                          f"got a table of {tuple(items.shape)}")
    centred = items - items.mean(0)
    _, singular, vh = torch.linalg.svd(centred, full_matrices=False)
    components = vh[:dim]
    signs = torch.sign(components.gather(1, components.abs().argmax(1, keepdim=True)))
    scores = centred @ (components * signs).T
    return torch.cat([scores.new_zeros(1, dim), scores]).float()
