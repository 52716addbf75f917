"""FAERec's item embedder (paper section 4; docs/PROTOCOL.md "FAERec details"): PCA-initialised ID embeddings, a
frozen LLM table with a trainable 2-layer projection, the dimension-wise gate, and the dual-level alignment.

Per training batch the LLM projection runs ONCE on the distinct items the batch touches (input, positive and
negative items) and every use gathers rows from it: the gated sequence input, the "fused" training targets
and both alignment losses. So dropout inside the projection draws one mask per distinct item per batch (the
authors' code draws one per occurrence and per use); in exchange the projection, the InfoNCE similarity
matrix and the Barlow Twins statistics cost O(distinct items), see faerec/models/losses.py for why the
losses are still exactly the occurrence-level ones.

Sequence input (as the authors' code): the ID and projected-LLM streams each get the backbone's position
encoding and dropout, the gate g = sigmoid(MLP([id; llm])) mixes them per dimension, fused = LN(g*id + (1-g)*llm).
Inference item table (paper 4.3, equal-weight fusion): LN(ID + projected LLM) with the same LayerNorm.
With ``id_only`` (the "ID only" reading of the ablation w/o AGF) nothing is fused: the backbone input is
LN(ID) and the item table LN(E_id); the LLM table reaches the model only through the two alignment losses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from faerec.errors import FaerecError
from faerec.models.backbones.base import Backbone
from faerec.models.item_side import ItemEmbedder, SequentialModel, TrainingTerms
from faerec.models.layers import Dropout, SeqLayout, take, take_where
from faerec.models.losses import curriculum_weights, feature_alignment, item_infonce
from faerec.models.pca import pca_scores
from faerec.models.registry import register_method

if TYPE_CHECKING:
    from faerec.models.config import ModelConfig

TRAIN_TARGETS = ("id", "fused")


@dataclass
class FaerecOptions:
    alpha: float = 0.2  # weight of the alignment loss (paper eq. 14)
    temperature: float = 0.05  # InfoNCE temperature (eq. 5)
    bt_lambda: float = 0.005  # Barlow Twins off-diagonal weight (eq. 9)
    w_min: float = 0.9  # curriculum bounds and period (eq. 11)
    w_max: float = 1.0
    period: float = 30.0
    fixed_w_item: float = 0.5  # w_item when curriculum=False (ablation "w/o CLS"); w_feat = 1 - w_item
    llm_dropout: float = 0.3  # dropout inside the LLM projection MLP
    gate_dropout: float = 0.1  # dropout inside the gate MLP
    # ablation switches (paper table 3)
    gate: bool = True  # AGF; False: equal-weight fusion (g = 1/2)
    item_align: bool = True  # ILA
    feat_align: bool = True  # FLA
    curriculum: bool = True  # CLS; False: fixed weights (fixed_w_item, 1 - fixed_w_item)
    pop_grouping: bool = True  # PG; False: one Barlow Twins term over all batch items
    # w/o AGF, "ID only" reading: no fusion at all, the item representation (backbone input and item table) is
    # LayerNorm(ID embeddings); the LLM table only enters through the alignment losses. gate is then unused.
    id_only: bool = False
    # which item representation the training logits use: "id" (the authors' code) or "fused" (the inference
    # representation LayerNorm(ID + projected LLM))
    train_targets: str = "id"

    def check(self, cfg: ModelConfig) -> None:
        if self.train_targets not in TRAIN_TARGETS:
            raise FaerecError(f"faerec: train_targets must be one of {list(TRAIN_TARGETS)}, not {self.train_targets!r}")
        for name in ("llm_dropout", "gate_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise FaerecError(f"faerec: {name} must be in [0, 1), got {getattr(self, name)}")
        if self.temperature <= 0 or self.period <= 0:
            raise FaerecError("faerec: temperature and period must be > 0")
        if not 0.0 <= self.w_min <= self.w_max <= 1.0 or not 0.0 <= self.fixed_w_item <= 1.0:
            raise FaerecError("faerec: need 0 <= w_min <= w_max <= 1 and 0 <= fixed_w_item <= 1")
        if self.id_only and not self.gate:
            raise FaerecError("faerec: id_only fuses nothing, so gate=false would change nothing; leave gate at "
                              "its default")


class LLMProjection(nn.Module):
    """Linear(d_llm, d_llm / 2) -> GELU -> Dropout -> Linear(-> hidden); torch's default init (as the authors)."""

    def __init__(self, llm_dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(llm_dim, llm_dim // 2), nn.GELU(), Dropout(dropout), nn.Linear(llm_dim // 2, hidden)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class DimensionGate(nn.Module):
    """g = sigmoid(Linear(2h, h)(Dropout(GELU(Linear(2h, 2h)([id; llm]))))), in (0, 1) per dimension."""

    def __init__(self, hidden: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(2 * hidden, 2 * hidden), nn.GELU(), Dropout(dropout), nn.Linear(2 * hidden, hidden)
        )
        nn.init.zeros_(self.net[-1].bias)  # start near g = 1/2, as the authors

    def forward(self, id_tokens: torch.Tensor, llm_tokens: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(torch.cat([id_tokens, llm_tokens], dim=-1)))


class FaerecItemEmbedder(ItemEmbedder):
    def __init__(
        self,
        cfg: ModelConfig,
        n_items: int,
        llm_table: torch.Tensor | None = None,
        pca_init: torch.Tensor | None = None,
        train_count: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        options = cfg.method_options
        if llm_table is None:
            raise FaerecError("method 'faerec' needs the LLM item embeddings (run `faerec embed` first)")
        if train_count is None:
            raise FaerecError("method 'faerec' needs the training popularity of every item (train_count)")
        self.cfg = cfg
        self.options = options
        if pca_init is None:
            pca_init = pca_scores(llm_table, cfg.hidden)
        self.id_embedding = nn.Embedding(n_items + 1, cfg.hidden, padding_idx=0)
        with torch.no_grad():
            self.id_embedding.weight.copy_(pca_init)
            self.id_embedding.weight[0].zero_()
        # Frozen inputs, not parameters; persistent=False keeps them out of checkpoints (they are rebuilt
        # from the embedding cache and the dataset, which is where they come from).
        self.register_buffer("llm_table", llm_table.float().clone(), persistent=False)
        with torch.no_grad():
            self.llm_table[0].zero_()
        self.register_buffer("popularity", train_count.long().clone(), persistent=False)
        self.projection = LLMProjection(llm_table.shape[1], cfg.hidden, options.llm_dropout)
        fuses = not options.id_only
        self.gate = DimensionGate(cfg.hidden, options.gate_dropout) if options.gate and fuses else None
        self.fusion_norm = nn.LayerNorm(cfg.hidden, eps=cfg.layer_norm_eps)
        self._projected_cache: tuple[tuple, torch.Tensor] | None = None

    # --- sequence side --------------------------------------------------------------------------------
    def _fuse(self, id_tokens: torch.Tensor, llm_tokens: torch.Tensor | None, layout: SeqLayout, backbone: Backbone):
        """[N, D] ID and projected-LLM rows of the real tokens -> (fused backbone input, gate or None)."""
        id_tokens = backbone.embed_positions(id_tokens, layout)
        if self.options.id_only:  # ablation w/o AGF, ID only: no LLM stream in the backbone input
            return self.fusion_norm(id_tokens), None
        llm_tokens = backbone.embed_positions(llm_tokens, layout)
        if self.gate is None:  # ablation w/o AGF: equal weights
            return self.fusion_norm(0.5 * (id_tokens + llm_tokens)), None
        g = self.gate(id_tokens, llm_tokens)
        return self.fusion_norm(g * id_tokens + (1 - g) * llm_tokens), g

    def sequence_input(self, input_ids: torch.Tensor, layout: SeqLayout, backbone: Backbone) -> torch.Tensor:
        tokens = layout.tokens_of(input_ids)
        if self._inference():  # scoring users: gather from the projected table, computed once per evaluation
            llm_rows = None if self.options.id_only else self._projected_table()[tokens]
            return self._fuse(self.id_embedding(tokens), llm_rows, layout, backbone)[0]
        distinct, inverse = torch.unique(tokens, return_inverse=True)
        llm_rows = None if self.options.id_only else take(self.projection(self.llm_table[distinct]), inverse)
        return self._fuse(take(self.id_embedding(distinct), inverse), llm_rows, layout, backbone)[0]

    def _inference(self) -> bool:
        return not self.training and not torch.is_grad_enabled()

    def _projected_table(self) -> torch.Tensor:
        """projection(llm_table) for inference, recomputed only when the projection's weights changed (an
        optimiser step or load_state_dict bumps a parameter's version), so an evaluation that scores the item
        table and then every batch of users projects each item once."""
        tensors = [*self.projection.parameters(), self.llm_table]  # data_ptr: a move to another device
        key = tuple((t.data_ptr(), t._version) for t in tensors)
        if self._projected_cache is None or self._projected_cache[0] != key:
            self._projected_cache = (key, self.projection(self.llm_table))
        return self._projected_cache[1]

    def gate_values(self, input_ids: torch.Tensor, backbone: Backbone) -> torch.Tensor | None:
        """[N, D] gate at the N real tokens of a batch (for inspection and tests); None without a gate."""
        layout = SeqLayout.from_ids(input_ids)
        tokens = layout.tokens_of(input_ids)
        return self._fuse(self.id_embedding(tokens), self.projection(self.llm_table[tokens]), layout, backbone)[1]

    # --- item side --------------------------------------------------------------------------------------
    def _fused_items(self, id_rows: torch.Tensor, llm_rows: torch.Tensor | None) -> torch.Tensor:
        if self.options.id_only:
            return self.fusion_norm(id_rows)
        return self.fusion_norm(id_rows + llm_rows)

    def item_table(self) -> torch.Tensor:
        if self.options.id_only:
            llm = None
        else:
            llm = self._projected_table() if self._inference() else self.projection(self.llm_table)
        table = self._fused_items(self.id_embedding.weight, llm)
        return torch.cat([table.new_zeros(1, table.shape[1]), table[1:]])

    def candidate_table(self, llm_rows: torch.Tensor, pca_rows: torch.Tensor) -> torch.Tensor:
        """[C, D] inference rows of items that have no trained ID row (candidate-only items, from their text):
        the ID row of an unseen item is its PCA row, which is what the ID table was initialised with, and it
        goes through the same equal-weight inference fusion LN(id + P(llm)) as ``item_table``.
        ``llm_rows`` [C, d_llm], ``pca_rows`` [C, hidden]; call in eval mode under ``torch.no_grad()``."""
        return self._fused_items(pca_rows.float(), self.projection(llm_rows.float()))

    # --- training ---------------------------------------------------------------------------------------
    def alignment_weights(self, epoch: int) -> tuple[float, float]:
        cfg = self.options
        if cfg.curriculum:
            return curriculum_weights(epoch, cfg.w_min, cfg.w_max, cfg.period)
        return cfg.fixed_w_item, 1.0 - cfg.fixed_w_item

    def training_terms(self, input_ids, layout, pos_ids, neg_ids, backbone, epoch) -> TrainingTerms:
        cfg = self.options
        input_tokens = layout.tokens_of(input_ids)
        n_in, n_pos = input_tokens.numel(), pos_ids.numel()
        distinct, inverse = torch.unique(torch.cat([input_tokens, pos_ids, neg_ids]), return_inverse=True)
        id_rows = self.id_embedding(distinct)
        llm_rows = self.projection(self.llm_table[distinct])
        inv_input, inv_pos, inv_neg = inverse[:n_in], inverse[n_in : n_in + n_pos], inverse[n_in + n_pos :]

        sequence, _ = self._fuse(take(id_rows, inv_input), take(llm_rows, inv_input), layout, backbone)
        targets = id_rows if cfg.train_targets == "id" else self._fused_items(id_rows, llm_rows)

        # alignment items: the batch's input items and sampled negatives (padding excluded), as the authors
        occurrences = torch.cat([inv_input, inv_neg[neg_ids != 0]])
        counts = torch.bincount(occurrences, minlength=distinct.numel())
        present = counts > 0
        zero = id_rows.new_zeros(())
        item_loss, feat_loss = zero, zero
        if present.any():
            counts, id_align, llm_align = (counts[present], take_where(id_rows, present).float(),
                                           take_where(llm_rows, present).float())
            # float32 even under bf16 autocast: temperature-scaled similarities and batch correlations
            with torch.autocast(device_type=id_align.device.type, enabled=False):
                if cfg.item_align:
                    item_loss = item_infonce(id_align, llm_align, counts, cfg.temperature)
                if cfg.feat_align:
                    popularity = self.popularity[distinct[present]]
                    feat_loss = feature_alignment(id_align, llm_align, counts, popularity, cfg.bt_lambda,
                                                  cfg.pop_grouping)
        w_item, w_feat = self.alignment_weights(epoch)
        auxiliary = cfg.alpha * (w_item * item_loss + w_feat * feat_loss)
        return TrainingTerms(
            sequence=sequence,
            positives=take(targets, inv_pos),
            negatives=take(targets, inv_neg),
            auxiliary=auxiliary,
            parts={"item_align": item_loss, "feat_align": feat_loss,
                   "w_item": zero + w_item, "w_feat": zero + w_feat},
        )


class FaerecModel(SequentialModel):
    """A SequentialModel that can also score candidate-only items from their text (``scores_new_items``)."""

    def candidate_table(self, llm_rows: torch.Tensor, pca_rows: torch.Tensor) -> torch.Tensor:
        return self.embedder.candidate_table(llm_rows, pca_rows)


@register_method("faerec", options=FaerecOptions, needs_text=True, scores_new_items=True,
                 summary="FAERec: gated ID/LLM fusion with item- and feature-level alignment (this paper)")
def build(cfg, make_backbone, inputs) -> FaerecModel:
    backbone = make_backbone()
    embedder = FaerecItemEmbedder(cfg, inputs.n_items, llm_table=inputs.require_text("faerec"),
                                  pca_init=inputs.pca_init, train_count=inputs.train_count)
    return FaerecModel(cfg, backbone, embedder)
