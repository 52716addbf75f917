"""What a method may read besides its config when it builds a model: the item count, training popularity,
the frozen LLM item table with its PCA, and (for methods that look at users, such as LLM-ESR) the dataset."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from faerec.data.dataset import Dataset


@dataclass
class ModelInputs:
    n_items: int
    train_count: torch.Tensor  # int64 [n_items + 1], training-part popularity (row 0 = padding)
    llm_table: torch.Tensor | None = None  # float [n_items + 1, d_llm], frozen; for methods with needs_text
    pca_init: torch.Tensor | None = None  # float [n_items + 1, hidden], PCA of llm_table
    dataset: Dataset | None = None  # the training data, for methods that need more than the item table

    def require_text(self, method: str) -> torch.Tensor:
        from faerec.errors import FaerecError

        if self.llm_table is None:
            raise FaerecError(f"method {method!r} needs the LLM item embeddings (llm_table); run `faerec embed`")
        return self.llm_table
