"""AlphaFuse: ID embeddings learned in the null space of the (decomposed) LLM item embeddings.

Hu et al., "AlphaFuse: Learn ID Embeddings for Sequential Recommendation in Null Space of Language
Embeddings", SIGIR 2025; official code Hugo-Chinn/AlphaFuse (the "AF" pipeline of ``Item_Embedding`` and
the ``AlphaFuse`` model in models/backbone_SASRec.py, defaults in train.py). Not among the FAERec paper's
Table 2 baselines; the FAERec paper cites it for its embedding size.

Decomposition (once, at build; the official ``semantic_space_decomposion``): with E the LLM rows of items
1..n times ``language_scale``, mu their mean and C = cov(E) (unbiased, numpy's ``np.cov``), the SVD
C = U diag(S) U^T gives the principal directions U and variances S. The item's semantic coordinates are
(e - mu) U[:, :h] (h = hidden), each divided by sqrt(S_k) when ``standardize`` (whitening: unit variance
per coordinate). The last ``null_dim`` of these h coordinates (the smallest retained variances) are the
"null space"; the first h - null_dim the semantic-rich row space.

Item embedding = frozen semantic coordinates + a learned ID vector in the null-space coordinates only:
  table[i] = sem[i] + [0, ..., 0, id_i]   (id_i in R^null_dim; ``cover=True``: the null-space coordinates of
  sem are zeroed first, so they hold the ID alone, the official ``cover`` switch).
The first h - null_dim coordinates never change in training (no parameter reaches them), which is the
method's point: the semantic geometry is kept, collaborative signal goes into the semantic-sparse part.
The same table is the backbone's input (plus the backbone's positions and a LayerNorm, as the base method)
and, at inference, the scoring table: nothing is projected, there is no adapter.

``scores_new_items=False``: the official ID rows start from N(0, 1), the scale of the whitened semantic
coordinates, so an item that never occurs in training keeps random noise in its null-space coordinates and
its vector is not determined by its text. (With ``id_init_std=0`` an untrained item's row would be exactly
its semantic row; the registry flag describes the defaults.)

Deviations from the paper and the official code, and why:
- ``null_dim`` default: 0 means hidden // 2, which is the official 64 at the official (and FAERec's) hidden
  size 128, but stays valid at any hidden size. The official threshold rule (``null_thres``, default None),
  popularity-weighted statistics (``item_frequency_flag``, default False) and the "euclidean" ID/injection
  spaces (defaults "singular") are not offered: only the default configuration is implemented.
- Standardisation divides ALL h retained coordinates by sqrt(S_k), null-space ones included, as the official
  code does (the paper describes standardising the semantic-rich subspace).
- The decomposition runs in float64 torch instead of numpy, and each singular vector's sign is fixed (its
  largest-magnitude entry positive) so the table is reproducible; LAPACK's signs are arbitrary, and a flip
  changes nothing of the method (the ID init is symmetric).
- Padding: row 0 of every table is zero (the official code appends a random padding row at index n).
- Objective and optimiser as for every method in the FAERec paper's setup: BCE with one sampled negative
  per position (official default: InfoNCE with temperature 0.07 over one negative), Adam lr 1e-3 without
  the official weight decay 1e-6.
- Backbones: this package's SASRec / FMLP-Rec / LRURec with their own position handling and dropout,
  packed real tokens (faerec/models/layers.py), full-ranking evaluation.
- LLM embeddings: those of ``faerec embed`` (the official runs use text-embedding-3-small, FAERec ada-002).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from faerec.errors import FaerecError
from faerec.models.backbones.base import Backbone
from faerec.models.item_side import ItemEmbedder, SequentialModel, TrainingTerms
from faerec.models.layers import SeqLayout
from faerec.models.registry import register_method

if TYPE_CHECKING:
    from faerec.models.config import ModelConfig


@dataclass
class AlphaFuseOptions:
    null_dim: int = 0  # null-space coordinates; 0: hidden // 2 (official null_dim 64 at hidden_dim 128)
    standardize: bool = True  # official standardization=True (whitening of the retained coordinates)
    cover: bool = False  # official cover=False: the ID is ADDED to the null-space coordinates
    language_scale: float = 40.0  # official language_embs_scale; cancels out when standardize is True
    id_init_std: float = 1.0  # official ID_embs_init_type "normal" = N(0, 1); 0 starts the ID part at zero

    def null_dims(self, hidden: int) -> int:
        return self.null_dim if self.null_dim > 0 else hidden // 2

    def check(self, cfg: ModelConfig) -> None:
        if self.null_dim < 0 or not 1 <= self.null_dims(cfg.hidden) < cfg.hidden:
            raise FaerecError(f"alphafuse: need 1 <= null_dim < hidden={cfg.hidden}, got {self.null_dims(cfg.hidden)}"
                              f" (null_dim=0 means hidden // 2)")
        if self.language_scale <= 0 or self.id_init_std < 0:
            raise FaerecError("alphafuse: need language_scale > 0 and id_init_std >= 0")


@dataclass(frozen=True)
class Decomposition:
    mean: torch.Tensor  # [d_llm] float64
    basis: torch.Tensor  # [d_llm, d_llm] principal directions (columns), sign-fixed
    variances: torch.Tensor  # [d_llm] singular values of the covariance, descending


def decompose(llm_table: torch.Tensor, scale: float = 1.0) -> Decomposition:
    """SVD of the (unbiased) covariance of items 1..n of ``llm_table * scale`` (row 0 = padding)."""
    items = llm_table[1:].double() * scale
    if items.shape[0] < 2:
        raise FaerecError("alphafuse: the covariance of the LLM table needs at least 2 items")
    mean = items.mean(0)
    centred = items - mean
    covariance = centred.T @ centred / (items.shape[0] - 1)
    basis, variances, _ = torch.linalg.svd(covariance)
    signs = torch.sign(basis.gather(0, basis.abs().argmax(0, keepdim=True)))
    signs[signs == 0] = 1
    return Decomposition(mean, basis * signs, variances)


def semantic_table(llm_table: torch.Tensor, hidden: int, null_dim: int, standardize: bool, cover: bool,
                   scale: float) -> torch.Tensor:
    """[n_items + 1, d_llm] -> [n_items + 1, hidden] frozen semantic coordinates (row 0 zero); with ``cover``
    the last ``null_dim`` coordinates are zero."""
    if hidden > llm_table.shape[1]:
        raise FaerecError(f"alphafuse: hidden={hidden} exceeds the LLM dimension {llm_table.shape[1]}")
    parts = decompose(llm_table, scale)
    projection = parts.basis[:, :hidden]
    if standardize:
        kept = parts.variances[:hidden]
        if not bool((kept > 1e-12 * parts.variances[0]).all()):
            raise FaerecError(f"alphafuse: the LLM table has rank below hidden={hidden} (too few items or "
                              f"degenerate embeddings); whitening would divide by zero")
        projection = projection / kept.sqrt()
    coords = (llm_table[1:].double() * scale - parts.mean) @ projection
    if cover:
        coords[:, hidden - null_dim :] = 0
    return torch.cat([coords.new_zeros(1, hidden), coords]).float()


class AlphaFuseItemEmbedder(ItemEmbedder):
    def __init__(self, cfg: ModelConfig, n_items: int, llm_table: torch.Tensor) -> None:
        super().__init__()
        options = cfg.method_options
        self.hidden = cfg.hidden
        self.null_dim = options.null_dims(cfg.hidden)
        table = semantic_table(llm_table, cfg.hidden, self.null_dim, options.standardize, options.cover,
                               options.language_scale)
        # frozen, derived from the LLM table; persistent=False keeps it out of checkpoints
        self.register_buffer("semantic_table", table, persistent=False)
        self.id_embedding = nn.Embedding(n_items + 1, self.null_dim, padding_idx=0)
        nn.init.normal_(self.id_embedding.weight, std=options.id_init_std)
        with torch.no_grad():
            self.id_embedding.weight[0].zero_()
        self.input_norm = nn.LayerNorm(cfg.hidden, eps=cfg.layer_norm_eps)

    def _in_null_space(self, id_rows: torch.Tensor) -> torch.Tensor:
        """[..., null_dim] -> [..., hidden]: zeros in the semantic-rich coordinates."""
        return F.pad(id_rows, (self.hidden - self.null_dim, 0))

    def item_rows(self, ids: torch.Tensor) -> torch.Tensor:
        return self.semantic_table[ids] + self._in_null_space(self.id_embedding(ids))

    def sequence_input(self, input_ids: torch.Tensor, layout: SeqLayout, backbone: Backbone) -> torch.Tensor:
        items = self.item_rows(layout.tokens_of(input_ids))
        return self.input_norm(backbone.embed_positions(items, layout))

    def training_terms(self, input_ids, layout, pos_ids, neg_ids, backbone, epoch) -> TrainingTerms:
        return TrainingTerms(
            sequence=self.sequence_input(input_ids, layout, backbone),
            positives=self.item_rows(pos_ids),
            negatives=self.item_rows(neg_ids),
            auxiliary=self.id_embedding.weight.new_zeros(()),
        )

    def item_table(self) -> torch.Tensor:
        return self.semantic_table + self._in_null_space(self.id_embedding.weight)


@register_method("alphafuse", options=AlphaFuseOptions, needs_text=True, scores_new_items=False,
                 summary="AlphaFuse: frozen whitened LLM coordinates + ID embeddings in their null space")
def build(cfg, make_backbone, inputs) -> SequentialModel:
    backbone = make_backbone()
    embedder = AlphaFuseItemEmbedder(cfg, inputs.n_items, inputs.require_text("alphafuse"))
    return SequentialModel(cfg, backbone, embedder)
