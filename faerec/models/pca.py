"""PCA of an LLM item table for an ID-embedding initialisation, when the caller has none precomputed.

The rule itself lives in faerec.text.pca (the one home of the PCA); this adapter only handles the padding
row and tensors, so a model built without a stored PCA gets exactly what `faerec embed` would have stored.
"""

from __future__ import annotations

import numpy as np
import torch

from faerec.errors import FaerecError
from faerec.text.pca import DEFAULT_PCA_SEED, fit_pca


def pca_scores(llm_table: torch.Tensor, dim: int, seed: int = DEFAULT_PCA_SEED) -> torch.Tensor:
    """[n_items + 1, d_llm] (row 0 padding) -> [n_items + 1, dim] principal-component scores of rows 1..n
    (centred, no whitening, as stored by `faerec embed`); row 0 zero."""
    items = llm_table[1:].detach().cpu().numpy().astype(np.float32)
    if dim > min(items.shape):
        raise FaerecError(f"PCA to {dim} dimensions needs at least {dim} items and LLM dimensions, "
                          f"got a table of {tuple(items.shape)}")
    scores, _ = fit_pca(items, dim, seed)
    return torch.cat([torch.zeros(1, dim), torch.from_numpy(scores)]).to(llm_table.device)
