"""LLM-ESR (Liu et al., NeurIPS 2024, "LLM-ESR: Large Language Models Enhancement for Long-tailed Sequential
Recommendation"; official code github.com/liuqidong07/LLM-ESR, models/DualLLMSRS.py and models/LLMESR.py):
dual-view modelling and retrieval-augmented self-distillation. A baseline of the FAERec paper.

Dual-view modelling (DualLLMSRS.py, DualLLMSASRec):
- semantic view: the frozen LLM item table through a trainable adapter ``Linear(d, d/2) -> Linear(d/2, h)``
  (two linear layers, no activation, no dropout);
- collaborative view: a trainable ID table initialised from the PCA of the LLM table to ``h`` dimensions;
- each view's input rows are scaled by sqrt(h), get the backbone's position encoding and embedding dropout;
  with ``cross_attention`` (on in the official Beauty script) the views then exchange information: the
  collaborative input becomes cross-attention with semantic queries over collaborative keys and values, and
  the semantic input the reverse (2 heads, no bias on Q/K/V, no dropout);
- ONE sequence encoder (the configured backbone) encodes both views, as the official code does (its
  ``split_backbone`` flag is parsed but never used); ``shared_encoder=False`` gives each view its own;
- user representation = [collaborative state ; semantic state], item representation = [ID row ; adapted
  LLM row], both 2h wide; the score is their dot product (= the sum of the two views' dot products).
The recommendation loss is BCE with one sampled negative per position over every position (the official
SASRec_seq loss; negatives come from the trainer).

Retrieval-augmented self-distillation (LLMESR.py, user_sim_func "kd"; data/retrieval_users.ipynb): every
user's LLM user embedding retrieves its ``sim_users`` most cosine-similar users, once, before training
(``retrieval_table``). For each training row, the teacher is the mean of the retrieved users' last-position
representations, each computed by this same model from that user's own training input (its training part
without the last item, the last max_len of it, as its own training row); the teacher carries no gradient.
The loss adds ``alpha * MSE(student, teacher)``, the student being the row's last-position representation.
As in the official code it applies to every training row, not only to long-tail users.

At inference only the dual-view model is used (``user_embedding`` and ``item_table``, both 2h wide); no
retrieval and no LLM call.

Deviations from the official code, and why:
- LLM user embedding: the mean of the LLM embeddings of the user's training-part items. The official code
  embeds, with the same LLM API as the items, a prompt listing the titles of the user's training items
  (data/<dataset>/get_user_embedding.ipynb); there is no user-level text here.
- The user itself is excluded explicitly (the official notebook drops the first column of the similarity
  ranking, which is the user unless there are ties); candidates are the users whose teacher input is not
  empty (at least 2 training items: every user of a 5-core dataset), and ``sim_users`` is capped at the
  number of candidates (tiny test datasets). The official file keeps the top 100 and training reads the
  first ``sim_user_num``, which is the top ``sim_user_num``.
- The cross-attention is causal (position t attends to positions <= t of the other view). The official one
  masks only padding keys, so position t sees the later items whose next-item targets it is trained on; the
  interface here requires causal user states.
- The official SASRec backbone (models/SASRec.py) has its causal mask commented out, counts positions from
  the left and initialises everything Xavier-normal; here the configured backbone keeps its own (causal)
  layers, positions and initialisation. The adapter and the cross-attention get Xavier-normal weights and
  PyTorch's default biases, as the official ``_init_weights`` leaves them.
- The student is the last-position state of the recommendation forward pass; the official code runs the
  encoder a second time on the same input (new dropout masks, same expectation).
- The teacher runs under ``torch.no_grad`` (the official code detaches it: the same gradients) in the module's
  current mode (dropout on in training, as the official code), once per DISTINCT retrieved user of the batch
  (one dropout mask per user instead of one per occurrence).
- Shared settings come from the model config, as for every baseline in the FAERec paper (hidden 128, batch
  256, lr 1e-3; official Beauty script: hidden 64, batch 128, max_len 200). The official dropout is 0.5
  (main.py ``--dropout_rate``); dropout is the shared ``ModelConfig.dropout`` (``--set dropout=0.5``). The
  PCA has ``hidden`` components (official: 64 = its hidden size).
- Not ported: ``item_reg`` (contrastive item regulariser, off in every official script), ``user_sim_func
  cl`` (the scripts use kd), the unused ``projector1/2`` layers and the unused ``co_view``/``se_view`` flags.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from faerec.errors import FaerecError
from faerec.models.item_side import loss_parts, packed_to_grid
from faerec.models.layers import GridBucket, SeqLayout
from faerec.models.losses import bce_loss
from faerec.models.pca import pca_scores
from faerec.models.registry import register_method

if TYPE_CHECKING:
    from faerec.data.dataset import Dataset
    from faerec.models.config import ModelConfig

CHUNK_ELEMENTS = 1 << 25  # build-time work in chunks of at most this many floats (128 MB): rows x users, rows x d


@dataclass
class LlmesrOptions:
    # sources: files of github.com/liuqidong07/LLM-ESR at commit e5dc388
    alpha: float = 0.1  # self-distillation weight (main.py:173 --alpha; experiments/beauty.bash:27)
    sim_users: int = 10  # retrieved similar users per user (main.py:189 --sim_user_num)
    cross_attention: bool = True  # cross-attention between the views (beauty.bash:28 --use_cross_att)
    cross_heads: int = 2  # its heads (models/DualLLMSRS.py:127 Multi_CrossAttention(h, h, 2))
    shared_encoder: bool = True  # one backbone for both views (DualLLMSRS.py:171-172, self.backbone twice)
    adapter_inner: int = 0  # adapter's middle width; 0 = d_llm // 2 (DualLLMSRS.py:111-114)
    scale_inputs: bool = True  # both views' input rows times sqrt(hidden) (DualLLMSRS.py:152, 158)

    def check(self, cfg: ModelConfig) -> None:
        if self.alpha < 0:
            raise FaerecError(f"llmesr: alpha must be >= 0, got {self.alpha}")
        if self.sim_users < 1:
            raise FaerecError(f"llmesr: sim_users must be >= 1, got {self.sim_users}")
        if self.adapter_inner < 0:
            raise FaerecError(f"llmesr: adapter_inner must be >= 0 (0 = d_llm // 2), got {self.adapter_inner}")
        if self.cross_attention and (self.cross_heads < 1 or cfg.hidden % self.cross_heads):
            raise FaerecError(f"llmesr: hidden ({cfg.hidden}) must be divisible by cross_heads ({self.cross_heads})")


# --- retrieval (build time) ---------------------------------------------------------------------------------
def training_parts(dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of every user's training part in ``dataset.items``."""
    starts = np.asarray(dataset.offsets[:-1], dtype=np.int64)
    return starts, starts + np.asarray(dataset.train_lengths, dtype=np.int64)


def left_padded(items: np.ndarray, starts: np.ndarray, ends: np.ndarray, length: int) -> np.ndarray:
    """[len(starts), length] int64: row i = items[max(starts[i], ends[i] - length) : ends[i]], right-aligned."""
    index = ends[:, None] - length + np.arange(length)[None, :]
    if len(items) == 0:
        return np.zeros(index.shape, dtype=np.int64)
    inside = index >= starts[:, None]
    return np.where(inside, items[np.clip(index, 0, len(items) - 1)], 0).astype(np.int64)


def user_llm_embeddings(dataset: Dataset, llm_table: torch.Tensor) -> torch.Tensor:
    """[n_users, d]: the mean LLM embedding of each user's training-part items (occurrences; zero if none)."""
    starts, ends = training_parts(dataset)
    lengths = ends - starts
    users = np.repeat(np.arange(dataset.n_users, dtype=np.int64), lengths)
    rank_in_part = np.arange(lengths.sum(), dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    entries = np.repeat(starts, lengths) + rank_in_part
    items = np.asarray(dataset.items, dtype=np.int64)[entries]
    table = llm_table.float()
    users_t, items_t = torch.from_numpy(users).to(table.device), torch.from_numpy(items).to(table.device)
    sums = table.new_zeros(dataset.n_users, table.shape[1])
    chunk = max(1, CHUNK_ELEMENTS // max(table.shape[1], 1))  # bounds the gathered [chunk, d] rows
    for start in range(0, len(items), chunk):
        sums.index_add_(0, users_t[start : start + chunk], table[items_t[start : start + chunk]])
    return sums / torch.from_numpy(np.maximum(lengths, 1)).to(sums)[:, None]


def retrieval_table(vectors: torch.Tensor, candidates: torch.Tensor, k: int) -> torch.Tensor:
    """[U, k] int64: for each row of ``vectors`` [U, d], the k candidates (bool [U]) of highest cosine
    similarity, best first, the row itself excluded. Similarities are computed in row chunks."""
    n = vectors.shape[0]
    unit = F.normalize(vectors.float(), dim=1)
    out = torch.empty(n, k, dtype=torch.long, device=vectors.device)
    if k == 0:
        return out
    chunk = max(1, CHUNK_ELEMENTS // max(n, 1))
    excluded = ~candidates.to(vectors.device)
    for start in range(0, n, chunk):
        rows = torch.arange(start, min(start + chunk, n), device=vectors.device)
        sims = unit[rows] @ unit.T
        sims[:, excluded] = float("-inf")
        sims[torch.arange(rows.numel(), device=vectors.device), rows] = float("-inf")
        out[rows] = torch.topk(sims, k, dim=1).indices
    return out


# --- layers -------------------------------------------------------------------------------------------------
def xavier_weights_(module: nn.Module) -> None:
    """The official ``_init_weights``: Xavier-normal on every weight matrix; biases keep PyTorch's default."""
    for parameter in module.parameters():
        if parameter.dim() > 1:
            nn.init.xavier_normal_(parameter)


class CausalCrossAttention(nn.Module):
    """softmax(Q(x) K(y)^T / sqrt(d_head)) V(y), then an output Linear; queries at position t attend to the
    other view's real positions <= t (the official Multi_CrossAttention, made causal)."""

    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(hidden, hidden, bias=False)
        self.key = nn.Linear(hidden, hidden, bias=False)
        self.value = nn.Linear(hidden, hidden, bias=False)
        self.out = nn.Linear(hidden, hidden)

    def _attend(self, grid: torch.Tensor, bucket: GridBucket) -> torch.Tensor:
        rows, length, width = grid.shape
        hidden = width // 3
        q, k, v = grid.view(rows, length, 3, self.heads, hidden // self.heads).permute(2, 0, 3, 1, 4)
        idx = torch.arange(length, device=grid.device)
        # key j <= query i and real; a padding query attends to itself only (its output is dropped)
        allowed = ((idx[None, :] <= idx[:, None]) & bucket.real[:, None, :]) | torch.eye(
            length, dtype=torch.bool, device=grid.device)
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed.unsqueeze(1))
        return context.transpose(1, 2).reshape(rows, length, hidden)

    def forward(self, x: torch.Tensor, y: torch.Tensor, layout: SeqLayout) -> torch.Tensor:
        """x, y: [N, h] the two views at the real tokens; queries from x, keys and values from y."""
        packed = torch.cat([self.query(x), self.key(y), self.value(y)], dim=-1)
        return self.out(layout.mix(packed, self._attend, x.shape[-1]))


class LlmesrModel(nn.Module):
    """Implements faerec.models.interface.SequentialRecommender (D' = 2 * hidden)."""

    def __init__(self, cfg: ModelConfig, backbones: list[nn.Module], n_items: int, llm_table: torch.Tensor,
                 pca_init: torch.Tensor | None, dataset: Dataset | None) -> None:
        super().__init__()
        options = cfg.method_options
        self.cfg = cfg
        self.options = options
        self.backbone = backbones[0]  # the collaborative view's encoder (and the semantic one's when shared)
        self.semantic_backbone = backbones[1] if len(backbones) > 1 else None
        hidden = cfg.hidden
        self.input_scale = math.sqrt(hidden) if options.scale_inputs else 1.0

        # frozen LLM table: a non-persistent buffer (rebuilt from the embedding cache, never checkpointed)
        self.register_buffer("llm_table", llm_table.float().clone(), persistent=False)
        with torch.no_grad():
            self.llm_table[0].zero_()
        inner = options.adapter_inner or max(1, llm_table.shape[1] // 2)
        self.adapter = nn.Sequential(nn.Linear(llm_table.shape[1], inner), nn.Linear(inner, hidden))
        self.id_embedding = nn.Embedding(n_items + 1, hidden, padding_idx=0)
        with torch.no_grad():
            self.id_embedding.weight.copy_(pca_init if pca_init is not None else pca_scores(llm_table, hidden))
            self.id_embedding.weight[0].zero_()
        if options.cross_attention:
            self.llm_to_id = CausalCrossAttention(hidden, options.cross_heads)  # semantic queries, ID keys/values
            self.id_to_llm = CausalCrossAttention(hidden, options.cross_heads)  # ID queries, semantic keys/values
        else:
            self.llm_to_id = self.id_to_llm = None
        xavier_weights_(self.adapter)
        for module in (self.llm_to_id, self.id_to_llm):
            if module is not None:
                xavier_weights_(module)

        # retrieval: built once here, kept out of checkpoints (they are rebuilt from the dataset)
        self.has_retrieval = dataset is not None
        if dataset is not None:
            if dataset.n_items != n_items:
                raise FaerecError(f"llmesr: the dataset has {dataset.n_items} items, the model {n_items}")
            starts, ends = training_parts(dataset)
            teacher_inputs = left_padded(np.asarray(dataset.items, dtype=np.int64), starts,
                                         np.maximum(ends - 1, starts), cfg.max_len)
            candidates = torch.from_numpy(ends - starts >= 2)
            k = max(0, min(options.sim_users, int(candidates.sum()) - 1))
            table = retrieval_table(user_llm_embeddings(dataset, self.llm_table), candidates, k)
        else:
            teacher_inputs, table = np.zeros((0, cfg.max_len), dtype=np.int64), torch.zeros(0, 0, dtype=torch.long)
        self.register_buffer("teacher_inputs", torch.from_numpy(teacher_inputs), persistent=False)
        self.register_buffer("similar_users", table, persistent=False)

    # --- sequence side ---------------------------------------------------------------------------------
    def _layout(self, input_ids: torch.Tensor) -> SeqLayout:
        if input_ids.dim() != 2 or input_ids.shape[1] > self.cfg.max_len:
            raise FaerecError(f"input_ids must be [batch, length <= max_len={self.cfg.max_len}], "
                              f"got {list(input_ids.shape)}")
        return SeqLayout.from_ids(input_ids)

    def _item_rows(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[U] distinct ids -> (ID rows, adapted LLM rows), each [U, h]."""
        return self.id_embedding(ids), self.adapter(self.llm_table[ids])

    def _encode(self, id_tokens: torch.Tensor, llm_tokens: torch.Tensor, layout: SeqLayout,
                last_only: bool = False) -> torch.Tensor:
        """[N, h] ID and adapted-LLM rows of the real tokens -> [N, 2h] [collaborative ; semantic] states, or
        with ``last_only`` the [B, 2h] states at each row's last column (Backbone.encode_last: a backbone may
        skip work that only the other positions need; the teacher and scoring users need nothing else)."""
        semantic_backbone = self.semantic_backbone or self.backbone
        id_tokens = self.backbone.embed_positions(id_tokens * self.input_scale, layout)
        llm_tokens = semantic_backbone.embed_positions(llm_tokens * self.input_scale, layout)
        if self.llm_to_id is not None:
            id_tokens, llm_tokens = (self.llm_to_id(llm_tokens, id_tokens, layout),
                                     self.id_to_llm(id_tokens, llm_tokens, layout))
        if last_only:
            return torch.cat([self.backbone.encode_last(id_tokens, layout),
                              semantic_backbone.encode_last(llm_tokens, layout)], dim=-1)
        return torch.cat([self.backbone.encode(id_tokens, layout), semantic_backbone.encode(llm_tokens, layout)],
                         dim=-1)

    def features(self, input_ids: torch.Tensor, layout: SeqLayout | None = None,
                 last_only: bool = False) -> torch.Tensor:
        """[N, 2h] states at the N real tokens of a [B, L] batch ([B, 2h] last-column states with ``last_only``)."""
        if layout is None:
            layout = self._layout(input_ids)
        distinct, inverse = torch.unique(layout.tokens_of(input_ids), return_inverse=True)
        id_rows, llm_rows = self._item_rows(distinct)
        return self._encode(torch.index_select(id_rows, 0, inverse), torch.index_select(llm_rows, 0, inverse),
                            layout, last_only)

    def user_embedding(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.features(input_ids, last_only=True)

    def sequence_states(self, input_ids: torch.Tensor) -> torch.Tensor:
        layout = self._layout(input_ids)
        return packed_to_grid(self.features(input_ids, layout), layout, input_ids.shape)

    def item_table(self) -> torch.Tensor:
        table = torch.cat([self.id_embedding.weight, self.adapter(self.llm_table)], dim=-1)
        return torch.cat([table.new_zeros(1, table.shape[1]), table[1:]])

    def candidate_table(self, llm_rows: torch.Tensor, pca_rows: torch.Tensor) -> torch.Tensor:
        """[C, 2h] inference rows of items without a trained ID row (candidate-only items): [PCA row ;
        adapter(LLM row)], the PCA row standing in for the collaborative ID row it would have started from.
        ``llm_rows`` [C, d_llm], ``pca_rows`` [C, hidden]; call in eval mode under ``torch.no_grad()``."""
        return torch.cat([pca_rows.float(), self.adapter(llm_rows.float())], dim=-1)

    # --- training ----------------------------------------------------------------------------------------
    def teacher(self, users: torch.Tensor) -> torch.Tensor:
        """[B, 2h]: the mean last-position state of each user's retrieved similar users (no gradient)."""
        similar = self.similar_users[users]  # [B, k]
        distinct, inverse = torch.unique(similar.reshape(-1), return_inverse=True)
        with torch.no_grad():
            states = self.user_embedding(self.teacher_inputs[distinct])
        return states[inverse].view(*similar.shape, -1).mean(1)

    def distillation(self, student: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
        """MSE (mean over rows and dimensions) between the rows' states and their teachers."""
        if not self.has_retrieval:
            raise FaerecError("llmesr: the model was built without the dataset, so it has no similar users to "
                              "distil from; pass the dataset to build_model (or call training_loss without users)")
        if self.similar_users.shape[1] == 0 or self.options.alpha == 0:
            return student.new_zeros((), dtype=torch.float32)
        teacher = self.teacher(users)
        with torch.autocast(device_type=student.device.type, enabled=False):
            return F.mse_loss(student.float(), teacher.float())

    def training_loss(
        self, input_ids: torch.Tensor, pos_ids: torch.Tensor, neg_ids: torch.Tensor, epoch: int,
        users: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        layout = self._layout(input_ids)
        input_tokens = layout.tokens_of(input_ids)
        scored = layout.tokens_of(pos_ids) != 0
        pos, neg = layout.tokens_of(pos_ids)[scored], layout.tokens_of(neg_ids)[scored]
        n_in, n_pos = input_tokens.numel(), pos.numel()
        distinct, inverse = torch.unique(torch.cat([input_tokens, pos, neg]), return_inverse=True)
        id_rows, llm_rows = self._item_rows(distinct)
        inv_in, inv_pos, inv_neg = inverse[:n_in], inverse[n_in : n_in + n_pos], inverse[n_in + n_pos :]

        states = self._encode(torch.index_select(id_rows, 0, inv_in), torch.index_select(llm_rows, 0, inv_in),
                              layout)
        targets = torch.cat([id_rows, llm_rows], dim=-1)
        hidden = states[scored]
        rec = bce_loss((hidden * torch.index_select(targets, 0, inv_pos)).sum(-1),
                       (hidden * torch.index_select(targets, 0, inv_neg)).sum(-1))
        distill = rec.new_zeros((), dtype=torch.float32)
        if users is not None:
            distill = self.distillation(layout.last(states), users)
        total = rec + self.options.alpha * distill
        return total, loss_parts({"rec": rec, "distill": distill, "total": total})


@register_method("llmesr", options=LlmesrOptions, needs_text=True, scores_new_items=True,
                 summary="LLM-ESR: dual-view LLM/ID modelling with retrieval-augmented self-distillation")
def build(cfg, make_backbone, inputs) -> LlmesrModel:
    backbones = [make_backbone() for _ in range(1 if cfg.method_options.shared_encoder else 2)]
    return LlmesrModel(cfg, backbones, inputs.n_items, inputs.require_text("llmesr"), inputs.pca_init,
                       inputs.dataset)
