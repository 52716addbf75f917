"""PCA of the item table for the ID-embedding initialisation (scikit-learn, seeded, no whitening)."""

from __future__ import annotations

import numpy as np

from faerec.errors import FaerecError


def fit_pca(vectors: np.ndarray, dim: int, seed: int) -> tuple[np.ndarray, float]:
    """Scores of the catalogue's items on their first ``dim`` principal components, and the variance share kept.

    ``vectors`` is [n_items, d] (the catalogue, no padding row). Same input and seed, same output.
    """
    from sklearn.decomposition import PCA

    n, d = vectors.shape
    if dim < 1 or dim > min(n, d):
        raise FaerecError(f"PCA dimension must be between 1 and min(items, embedding dim) = {min(n, d)}, got {dim}")
    pca = PCA(n_components=dim, random_state=seed)
    scores = pca.fit_transform(vectors.astype(np.float64, copy=False))
    return scores.astype(np.float32), float(pca.explained_variance_ratio_.sum())
