"""LLMInit: ID embeddings initialised from the LLM item embeddings, then trained as plain IDs (FAERec's baseline).

The FAERec paper (section 5.1.3, "LLMInit") groups under this name the methods that initialise the item
embedding layer with language embeddings and then fine-tune it on the interactions:
- LLM2Bert4Rec: Harte et al., "Leveraging Large Language Models for Sequential Recommendation", RecSys 2023
  (the item embeddings of BERT4Rec start from PCA-reduced LLM embeddings);
- SAID: Hu et al., "Enhancing Sequential Recommendation via LLM-based Semantic Embedding Learning", WWW 2024
  companion;
- Elephant: Qu et al., "The Elephant in the Room: Rethinking the Usage of Pre-trained Language Model in
  Sequential Recommendation", RecSys 2024.
A public sequential implementation of the same baseline is ``LLMInit`` in Hugo-Chinn/AlphaFuse
(models/backbone_SASRec.py, the "SI" item-embedding pipeline of models/embedding.py). The FAERec authors'
code (ZhifuWei/FAERec) holds no LLMInit code; their own ID initialisation is the same PCA as here.

What it does: the ID table [n_items + 1, hidden] starts from
- ``projection=False`` (default): the PCA scores of the LLM table to ``hidden`` dimensions (``inputs.pca_init``,
  the table ``faerec embed`` stores, docs/PROTOCOL.md 6.2; computed with faerec.models.pca when absent):
  centred, not whitened, exactly FAERec's ID initialisation, so LLMInit and FAERec differ only in what
  FAERec adds on top;
- ``projection=True``: a random linear projection of the centred LLM table, W with N(0, 1 / d_llm) entries
  drawn from the global (seeded) RNG after the backbone's initialisation, rescaled so that the table's
  entries have standard deviation ``cfg.init_std`` (the scale of the base method's random IDs). This is the
  "text-derived but not PCA" variant: the rows keep the items' semantic geometry (Johnson-Lindenstrauss)
  without PCA's large leading components.
After that the model IS the base method (faerec/models/methods/base.py): plain trainable IDs as the backbone's
input and as the scoring targets, BCE with one negative per position, no auxiliary loss. Nothing of the LLM
side is kept: no LLM buffer, no projection module; at inference the item table is the trained ID table.
``scores_new_items=False``: an item needs its own row of that table; one that never occurs in training keeps
its initial text-derived row, but the model holds no map from text to the trained ID space that would give a
row to an item outside the table (and that start row has not followed the trained rows' drift).

Deviations from the cited papers / code, and why:
- One ID initialisation for the whole family (PCA to the hidden size, or the random-projection option),
  not each paper's own variant (SAID trains an LLM-side projector first; Elephant and AlphaFuse's "SI"
  whiten or rescale): the FAERec paper treats them as one baseline, and the PCA is the one FAERec uses.
- The backbones are this package's SASRec / FMLP-Rec / LRURec (BERT4Rec in LLM2Bert4Rec), trained with the
  FAERec paper's setup for every baseline: BCE with one sampled negative per position on the packed-token
  interface (faerec/models/layers.py), full-ranking evaluation instead of sampled metrics.
- ``projection=True`` is this package's option, not a published variant.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from faerec.models.item_side import SequentialModel
from faerec.models.methods.base import IdItemEmbedder
from faerec.models.pca import pca_scores
from faerec.models.registry import register_method


@dataclass
class LlmInitOptions:
    # False: PCA scores (FAERec's initialisation); True: a seeded random projection scaled to cfg.init_std
    projection: bool = False


def random_projection_init(llm_table: torch.Tensor, hidden: int, std: float) -> torch.Tensor:
    """[n_items + 1, d_llm] -> [n_items + 1, hidden]: centred rows of items 1..n times a N(0, 1/d_llm) matrix
    from the global RNG, rescaled to entry standard deviation ``std``; row 0 (padding) zero."""
    items = llm_table[1:].double()
    centred = items - items.mean(0)
    weight = torch.randn(items.shape[1], hidden, dtype=torch.float64) / items.shape[1] ** 0.5
    rows = centred @ weight
    spread = rows.std()
    if spread > 0:
        rows = rows * (std / spread)
    return torch.cat([rows.new_zeros(1, hidden), rows]).float()


@register_method("llminit", options=LlmInitOptions, needs_text=True, scores_new_items=False,
                 summary="LLMInit: ID embeddings initialised from the LLM table (PCA), then plain IDs")
def build(cfg, make_backbone, inputs) -> SequentialModel:
    backbone = make_backbone()
    llm_table = inputs.require_text("llminit")
    embedder = IdItemEmbedder(cfg, inputs.n_items)
    if cfg.method_options.projection:
        start = random_projection_init(llm_table, cfg.hidden, cfg.init_std)
    else:
        start = inputs.pca_init if inputs.pca_init is not None else pca_scores(llm_table, cfg.hidden)
    with torch.no_grad():
        embedder.id_embedding.weight.copy_(start)
        embedder.id_embedding.weight[0].zero_()
    return SequentialModel(cfg, backbone, embedder)
