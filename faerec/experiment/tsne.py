"""t-SNE of a trained run's item embeddings (paper figure 5): the ID table and the projected LLM table of the
same sampled items, coloured head / tail.

The model is rebuilt from the run folder (config.json, the embeddings it was trained with, best.pt loaded
with weights_only). For an item embedder with an ``id_embedding`` (base, FAERec, ...) the ID panel shows its
rows; where it also has a ``projection`` of the frozen ``llm_table`` (FAERec) the LLM panel shows the
projected rows P(E_llm). A model without them is drawn from its inference item table. Each panel is its own
t-SNE fit (sklearn, seeded). Under each FAERec pair the 10-NN overlap says how consistent the two spaces'
neighbourhoods are: the mean share of an item's 10 nearest neighbours (cosine, among the sampled items) that
the two tables agree on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from faerec.data.dataset import Dataset
from faerec.experiment.figures import png_bytes, pyplot
from faerec.runs import checkpoint, folder
from faerec.runs.modelling import check_embeddings, model_for, text_tables

SAMPLE_ITEMS = 1000
NEIGHBOURS = 10


@dataclass
class RunEmbeddings:
    label: str
    tables: dict[str, np.ndarray]  # panel title -> [n_items + 1, d]
    is_head: np.ndarray  # bool [n_items + 1]


def load_run(run_dir: str | Path, label: str = "", dataset_dir: str | Path | None = None) -> RunEmbeddings:
    run_dir = Path(run_dir)
    saved_dir, cfg = folder.read_config(run_dir)
    dataset = Dataset.load(dataset_dir or saved_dir)
    tables = text_tables(dataset, cfg)
    check_embeddings(folder.recorded_embeddings(run_dir), tables, run_dir)
    model = model_for(dataset, cfg, tables)
    model.load_state_dict(checkpoint.load(run_dir / checkpoint.BEST)["model"])
    model.eval()
    out: dict[str, np.ndarray] = {}
    embedder = getattr(model, "embedder", None)
    with torch.no_grad():
        if embedder is not None and hasattr(embedder, "id_embedding"):
            out["ID embeddings"] = embedder.id_embedding.weight.detach().float().numpy()
            if hasattr(embedder, "projection") and hasattr(embedder, "llm_table"):
                out["projected LLM embeddings"] = embedder.projection(embedder.llm_table).float().numpy()
        else:
            out["item table"] = model.item_table().detach().float().numpy()
    return RunEmbeddings(label or cfg.model.method, out, dataset.is_head.astype(bool))


def sample_items(n_items: int, n: int = SAMPLE_ITEMS, seed: int = 2024) -> np.ndarray:
    """The same seeded item sample for every run of a dataset (item_idx 1..n_items)."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(np.arange(1, n_items + 1), size=min(n, n_items), replace=False))


def tsne_2d(vectors: np.ndarray, seed: int = 2024) -> np.ndarray:
    from sklearn.manifold import TSNE

    perplexity = float(min(30.0, max(2.0, (len(vectors) - 1) / 3)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto",
                random_state=seed).fit_transform(np.asarray(vectors, dtype=np.float64))


def knn_overlap(a: np.ndarray, b: np.ndarray, k: int = NEIGHBOURS) -> float:
    """Mean share of each row's k nearest neighbours (cosine, excluding itself) shared by the two tables."""
    k = min(k, len(a) - 1)
    if k < 1:
        return float("nan")

    def neighbours(x: np.ndarray) -> np.ndarray:
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        sim = x @ x.T
        np.fill_diagonal(sim, -np.inf)
        return np.argpartition(-sim, k, axis=1)[:, :k]

    na, nb = neighbours(a), neighbours(b)
    return float(np.mean([len(set(na[i]) & set(nb[i])) / k for i in range(len(a))]))


def tsne_png(runs: Sequence[RunEmbeddings], items: np.ndarray, title: str = "", seed: int = 2024) -> tuple[bytes, dict]:
    """One row per run, one panel per table; returns the PNG and {label: 10-NN overlap or None}."""
    plt = pyplot()
    columns = max(len(r.tables) for r in runs)
    fig, axes = plt.subplots(len(runs), columns, figsize=(4.6 * columns, 4.2 * len(runs)), dpi=100, squeeze=False)
    overlaps: dict[str, float | None] = {}
    for row, run in enumerate(runs):
        head = run.is_head[items]
        names = list(run.tables)
        overlap = None
        if len(names) == 2:
            overlap = knn_overlap(run.tables[names[0]][items], run.tables[names[1]][items])
        overlaps[run.label] = overlap
        for col in range(columns):
            ax = axes[row][col]
            ax.set_xticks([])
            ax.set_yticks([])
            if col >= len(names):
                ax.text(0.5, 0.5, f"{run.label}: no LLM embeddings\nin the item representation", ha="center",
                        va="center", transform=ax.transAxes, color="grey")
                ax.set_frame_on(False)
                continue
            xy = tsne_2d(run.tables[names[col]][items], seed)
            ax.scatter(xy[~head, 0], xy[~head, 1], s=5, alpha=0.6, color="#1f77b4", label=f"tail ({int((~head).sum())})")
            ax.scatter(xy[head, 0], xy[head, 1], s=5, alpha=0.8, color="#d62728", label=f"head ({int(head.sum())})")
            ax.set_title(f"{run.label}: {names[col]}", fontsize=10)
            if col == 0:
                ax.legend(fontsize=8, loc="upper right", markerscale=2)
        if overlap is not None:
            axes[row][0].set_xlabel(f"ID vs LLM {NEIGHBOURS}-NN overlap: {overlap:.3f}", fontsize=9)
    fig.suptitle(title or f"t-SNE of {len(items)} sampled items", fontsize=11)
    fig.tight_layout()
    return png_bytes(fig), overlaps
