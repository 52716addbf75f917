"""The contract between models and the trainer/evaluator.

Sequences are LEFT-padded with item 0: ``input_ids[b, -1]`` is the most recent item. Positions whose input
is 0 are padding; their outputs are ignored by every loss and never attend to real items' futures.
"""

from __future__ import annotations

from typing import Protocol

import torch


class SequentialRecommender(Protocol):
    """What ``faerec.models.build_model`` returns (an ``nn.Module``)."""

    def training_loss(
        self, input_ids: torch.Tensor, pos_ids: torch.Tensor, neg_ids: torch.Tensor, epoch: int,
        users: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Total loss for one batch and its named parts (floats, for logging).

        input_ids, pos_ids, neg_ids: LongTensor [B, L]; pos_ids[b, t] is the next item after input_ids[b, t],
        neg_ids[b, t] one sampled negative; positions where pos_ids == 0 are excluded from every loss (and so
        are positions whose input is padding: they have no hidden state). ``epoch`` (0-based) drives FAERec's
        curriculum. ``users`` [B] (user_idx of each row) is for methods whose losses look across users
        (LLM-ESR's self-distillation); the others ignore it. Parts: "rec", "total", and for FAERec "item_align", "feat_align" (0.0 when switched
        off), "w_item", "w_feat".
        """
        ...

    def item_table(self) -> torch.Tensor:
        """[n_items + 1, D] item representations used for inference scoring (row 0 = padding). Call it in
        eval mode and under ``torch.no_grad()``, once per evaluation."""
        ...

    def user_embedding(self, input_ids: torch.Tensor) -> torch.Tensor:
        """[B, D] representation of the last position, scored against ``item_table()`` by dot product.
        A row whose last position is padding (e.g. an all-padding row) gets a zero vector. Rows are
        independent: the result for a user depends neither on the other rows nor on extra left padding."""
        ...

    def sequence_states(self, input_ids: torch.Tensor) -> torch.Tensor:
        """[B, L, D] representation at every position (zeros at padding); position t depends only on the
        items at positions <= t. For inspection and the registry-driven contract tests."""
        ...


class ScoresNewItems(Protocol):
    """What a method registered with ``scores_new_items=True`` (faerec, llmesr) adds to its model: rows for
    items that have text but no trained ID row (the candidate-only items of ``faerec prepare``: new catalogue
    items, or items held out by the new-item protocol). Recommendation (faerec.serve) and the new-item
    evaluation append them to ``item_table()``; a method without the flag cannot recommend such items."""

    def candidate_table(self, llm_rows: torch.Tensor, pca_rows: torch.Tensor) -> torch.Tensor:
        """[C, D] item representations, comparable with ``item_table()`` rows, from the items' LLM embeddings
        ``llm_rows`` [C, d_llm] and their PCA scores ``pca_rows`` [C, hidden] (the PCA fitted on the trained
        items, i.e. what an ID row of the item would have been initialised with). Call it in eval mode and
        under ``torch.no_grad()``; rows are independent of each other and of C."""
        ...
