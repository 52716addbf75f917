"""RLMRec-Con and RLMRec-Gen: ID embeddings regularised towards the LLM item embeddings (FAERec's baselines).

Ren et al., "Representation Learning with Large Language Models for Recommendation", WWW 2024; official code
HKUDS/RLMRec (encoder/models/general_cf/*_plus.py = Con, *_gene.py = Gen, encoder/models/loss_utils.py,
encoder/models/aug_utils.py NodeMask, defaults in encoder/config/modelconf/lightgcn_{plus,gene}.yml).
RLMRec is a model-agnostic add-on for graph collaborative filtering; the FAERec paper (section 5.1.3)
adapts it to sequential recommendation: "RLMRec-Con maps LLM embeddings to collaborative space, while
RLMRec-Gen maps randomly masked ID embeddings to semantic space for reconstruction". The FAERec authors'
code (ZhifuWei/FAERec) holds no RLMRec code, so the adaptation below is ours, following the official code.

Both methods are the base method (plain trainable IDs in and out, faerec/models/methods/base.py) plus
``weight * auxiliary`` added to the BCE loss. The frozen LLM table is a non-persistent buffer, the MLP and
(Gen) the mask token are the only extra parameters, and all of them are used in training only: at inference
the item table is the ID table and the sequence input is the plain ID input.

rlmrec-con ("contrastive alignment", the official ``kd_loss``): s(u, v) = cos(id_u, MLP(llm_v)) / tau with
MLP = Linear(d_llm, (d_llm + h) / 2) -> LeakyReLU -> Linear(-> h). Over the batch's M scored positions the
official InfoNCE ``cal_infonce_loss`` is applied to the positive items and, separately, to the negative
items: each occurrence of item u is a query, its own projection the positive, and every occurrence in the
same set (itself and duplicates included, as the official code does not mask them) a key in the
denominator. aux = kd_weight * (InfoNCE_pos + InfoNCE_neg), each term an occurrence mean. Computed on the
distinct items with occurrence counts c: row loss logsumexp_v(s_uv + log c_v) - s_uu, weighted by c_u,
which is exactly the occurrence-level sum divided by M at O(U^2) cost.

rlmrec-gen ("generative reconstruction", the official ``_reconstruction``): per training batch
max(int(U * mask_ratio), 1) of the U distinct items in the input sequences are drawn without replacement
(the official NodeMask count); every input occurrence of a drawn item gets a learned mask token (zeros at
init) instead of its ID row. The backbone encodes the masked sequences (its hidden states also feed the BCE
loss, as the official BPR runs on the masked propagation), and from the hidden state at each masked
occurrence an MLP = Linear(h, (d_llm + h) / 2) -> LeakyReLU -> Linear(-> d_llm) reconstructs the item's LLM
embedding, scored by the official ``ssl_con_loss``: InfoNCE of cos(MLP(hidden), llm) / tau against the
other masked items' LLM embeddings. aux = recon_weight * that loss.

MLP weights are xavier-uniform, biases torch's default (the official ``_init_weight``).

Deviations from the paper and the official code, and why:
- Sequential adaptation, item side only: the official losses also align USER embeddings with LLM-generated
  user profiles (Con's anchor term; Gen masks user nodes too). A sequential model has no user ID embeddings
  and our datasets no user profiles, so those terms are dropped.
- What is aligned: the official code aligns the GCN-propagated embeddings; a sequential model scores items
  with their ID rows (there is no propagation), so Con aligns the ID rows and Gen reconstructs from the
  backbone's hidden state at the masked position, the sequential analogue of a masked node's propagated
  embedding (it sees the mask token and the earlier items of the sequence).
- Gen masks a share of the batch's distinct input items, not of all graph nodes (a sequential batch encodes
  only its own sequences), and only in the backbone input: the BCE targets stay ID rows. Each masked
  occurrence is one reconstruction query and the keys are the distinct masked items, so an item masked at
  several positions is not its own negative; with no repeats this is the official loss exactly.
- Semantic embeddings: the item text embeddings of ``faerec embed`` (the FAERec paper uses
  text-embedding-ada-002 on item text), not RLMRec's LLM-generated profiles.
- Objective and optimiser as for every method in the FAERec paper's setup: BCE with one sampled negative
  per position instead of BPR, and no L2 term (the official reg_weight = 1e-7 on all parameters); Adam
  lr 1e-3, hidden 128 instead of the official 32.
- Numerics: F.normalize instead of the official x / sqrt(|x|^2 + 1e-8), log-softmax instead of
  -log(e / (sum + 1e-8) + 1e-8); the losses run in float32 even under bf16 autocast.
- The Con projection runs once per distinct item of the batch (it has no dropout, so this changes nothing).
- Not Hugo-Chinn/AlphaFuse's sequential RLMRec re-implementation (models/backbone_SASRec.py), which replaces
  both losses by 1 - mean cosine over the whole table and masks nothing: the FAERec paper adopts the
  authors' implementation.
- Packed real tokens (faerec/models/layers.py) and full-ranking evaluation instead of the official
  graph-CF data pipeline; no difference in the model's function.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from faerec.errors import FaerecError
from faerec.models.backbones.base import Backbone
from faerec.models.item_side import SequentialModel, TrainingTerms, loss_parts
from faerec.models.layers import SeqLayout
from faerec.models.losses import bce_loss
from faerec.models.methods.base import IdItemEmbedder
from faerec.models.registry import register_method

if TYPE_CHECKING:
    from faerec.models.config import ModelConfig


@dataclass
class RlmrecConOptions:
    # official lightgcn_plus.yml (the top-level values and the "amazon" block agree)
    kd_weight: float = 1.0e-2
    kd_temperature: float = 0.2

    def check(self, cfg: ModelConfig) -> None:
        if self.kd_weight < 0 or self.kd_temperature <= 0:
            raise FaerecError("rlmrec-con: need kd_weight >= 0 and kd_temperature > 0")


@dataclass
class RlmrecGenOptions:
    # official lightgcn_gene.yml, "amazon" block (the dataset block the official run with data.name "amazon"
    # reads; the top-level values are mask_ratio 0.1, recon_weight 0.1, re_temperature 0.2)
    recon_weight: float = 0.1
    re_temperature: float = 0.5
    mask_ratio: float = 0.15

    def check(self, cfg: ModelConfig) -> None:
        if self.recon_weight < 0 or self.re_temperature <= 0:
            raise FaerecError("rlmrec-gen: need recon_weight >= 0 and re_temperature > 0")
        if not 0.0 <= self.mask_ratio <= 1.0:
            raise FaerecError(f"rlmrec-gen: mask_ratio must be in [0, 1], got {self.mask_ratio}")


def rlmrec_mlp(d_in: int, d_out: int) -> nn.Sequential:
    """Linear(d_in, (d_in + d_out) // 2) -> LeakyReLU -> Linear(-> d_out), xavier-uniform weights."""
    middle = (d_in + d_out) // 2
    net = nn.Sequential(nn.Linear(d_in, middle), nn.LeakyReLU(), nn.Linear(middle, d_out))
    for layer in net:
        if isinstance(layer, nn.Linear):
            nn.init.xavier_uniform_(layer.weight)
    return net


def counted_infonce(queries: torch.Tensor, keys: torch.Tensor, counts: torch.Tensor,
                    temperature: float) -> torch.Tensor:
    """RLMRec's ``cal_infonce_loss`` over a set of occurrences, each distinct item given once.

    queries, keys: [U, D] (row u: item u's query and its positive key); counts: [U] occurrences of each item.
    Every occurrence of u contributes logsumexp over ALL occurrences v of s_uv, minus s_uu, with
    s = cos / temperature; the result is the mean over the occurrences."""
    weights = counts.to(queries.dtype)
    logits = F.normalize(queries, dim=-1) @ F.normalize(keys, dim=-1).T / temperature
    per_item = torch.logsumexp(logits + weights.log()[None, :], dim=1) - logits.diagonal()
    return (per_item * weights).sum() / weights.sum()


def _frozen_llm(module: nn.Module, llm_table: torch.Tensor) -> None:
    # frozen input, not a parameter; persistent=False keeps it out of checkpoints (rebuilt from the cache)
    module.register_buffer("llm_table", llm_table.float().clone(), persistent=False)
    with torch.no_grad():
        module.llm_table[0].zero_()


class RlmrecConItemEmbedder(IdItemEmbedder):
    def __init__(self, cfg: ModelConfig, n_items: int, llm_table: torch.Tensor) -> None:
        super().__init__(cfg, n_items)
        self.options = cfg.method_options
        _frozen_llm(self, llm_table)
        self.projection = rlmrec_mlp(llm_table.shape[1], cfg.hidden)  # semantic -> collaborative space

    def kd_loss(self, pos_ids: torch.Tensor, neg_ids: torch.Tensor) -> torch.Tensor:
        """InfoNCE over the positive occurrences + InfoNCE over the negative occurrences (padding excluded)."""
        groups = [pos_ids[pos_ids != 0], neg_ids[neg_ids != 0]]
        distinct, inverse = torch.unique(torch.cat(groups), return_inverse=True)
        id_rows = self.id_embedding(distinct)
        llm_rows = self.projection(self.llm_table[distinct])
        loss = id_rows.new_zeros((), dtype=torch.float32)
        start = 0
        with torch.autocast(device_type=id_rows.device.type, enabled=False):
            for group in groups:
                index = inverse[start : start + group.numel()]
                start += group.numel()
                if index.numel() == 0:
                    continue
                members, counts = torch.unique(index, return_counts=True)
                loss = loss + counted_infonce(id_rows[members].float(), llm_rows[members].float(), counts,
                                              self.options.kd_temperature)
        return loss

    def training_terms(self, input_ids, layout, pos_ids, neg_ids, backbone, epoch) -> TrainingTerms:
        terms = super().training_terms(input_ids, layout, pos_ids, neg_ids, backbone, epoch)
        kd = self.kd_loss(pos_ids, neg_ids)
        terms.auxiliary = self.options.kd_weight * kd
        terms.parts = {"kd": kd}
        return terms


class RlmrecGenItemEmbedder(IdItemEmbedder):
    def __init__(self, cfg: ModelConfig, n_items: int, llm_table: torch.Tensor) -> None:
        super().__init__(cfg, n_items)
        self.options = cfg.method_options
        _frozen_llm(self, llm_table)
        self.mask_token = nn.Parameter(torch.zeros(cfg.hidden))  # official NodeMask: learned, zeros at init
        self.reconstructor = rlmrec_mlp(cfg.hidden, llm_table.shape[1])  # collaborative -> semantic space

    def choose_masked(self, tokens: torch.Tensor) -> torch.Tensor:
        """[N] input item ids -> bool [N]: every occurrence of max(int(U * mask_ratio), 1) of the U distinct
        items, drawn without replacement from the global RNG."""
        distinct = torch.unique(tokens)
        if distinct.numel() == 0:
            return torch.zeros_like(tokens, dtype=torch.bool)
        n_masked = max(int(distinct.numel() * self.options.mask_ratio), 1)
        chosen = distinct[torch.randperm(distinct.numel(), device=tokens.device)[:n_masked]]
        return torch.isin(tokens, chosen)

    def masked_sequence_input(self, tokens: torch.Tensor, masked: torch.Tensor, layout: SeqLayout,
                              backbone: Backbone) -> torch.Tensor:
        items = self.id_embedding(tokens)
        items = torch.where(masked[:, None], self.mask_token.to(items.dtype), items)
        return self.input_norm(backbone.embed_positions(items, layout))

    def reconstruction_loss(self, hidden: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """hidden: [K, D] states at the masked occurrences of ``items`` [K] -> RLMRec's ``ssl_con_loss``."""
        distinct, inverse = torch.unique(items, return_inverse=True)
        reconstructed = self.reconstructor(hidden)
        with torch.autocast(device_type=hidden.device.type, enabled=False):
            queries = F.normalize(reconstructed.float(), dim=-1)
            keys = F.normalize(self.llm_table[distinct], dim=-1)
            return F.cross_entropy(queries @ keys.T / self.options.re_temperature, inverse)


class RlmrecGenModel(SequentialModel):
    """SequentialModel whose training pass masks input items and reconstructs their LLM embeddings from the
    backbone's hidden states (one encoder pass serves both losses); inference is the base model's."""

    def training_loss(self, input_ids, pos_ids, neg_ids, epoch, users=None):
        layout = self._layout(input_ids)
        embedder: RlmrecGenItemEmbedder = self.embedder
        tokens = layout.tokens_of(input_ids)
        targets = layout.tokens_of(pos_ids)
        scored = targets != 0
        pos, neg = targets[scored], layout.tokens_of(neg_ids)[scored]
        masked = embedder.choose_masked(tokens)
        states = self.backbone.encode(embedder.masked_sequence_input(tokens, masked, layout, self.backbone),
                                      layout)
        hidden = states[scored]
        rec = bce_loss((hidden * embedder.id_embedding(pos)).sum(-1), (hidden * embedder.id_embedding(neg)).sum(-1))
        recon = rec.new_zeros(())
        if bool(masked.any()):
            recon = embedder.reconstruction_loss(states[masked], tokens[masked])
        total = rec + embedder.options.recon_weight * recon
        return total, loss_parts({"rec": rec, "recon": recon, "total": total})


@register_method("rlmrec-con", options=RlmrecConOptions, needs_text=True, scores_new_items=False,
                 summary="RLMRec-Con: InfoNCE between ID embeddings and MLP-projected LLM embeddings")
def build_con(cfg, make_backbone, inputs) -> SequentialModel:
    backbone = make_backbone()
    embedder = RlmrecConItemEmbedder(cfg, inputs.n_items, inputs.require_text("rlmrec-con"))
    return SequentialModel(cfg, backbone, embedder)


@register_method("rlmrec-gen", options=RlmrecGenOptions, needs_text=True, scores_new_items=False,
                 summary="RLMRec-Gen: reconstruct LLM embeddings of masked items from the sequence states")
def build_gen(cfg, make_backbone, inputs) -> SequentialModel:
    backbone = make_backbone()
    embedder = RlmrecGenItemEmbedder(cfg, inputs.n_items, inputs.require_text("rlmrec-gen"))
    return RlmrecGenModel(cfg, backbone, embedder)
