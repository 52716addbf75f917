"""Full-ranking evaluation of a SequentialRecommender over every evaluable user (docs/PROTOCOL.md).

The item table is computed once per evaluation; users are scored in batches against it. Each user's result
depends only on its own row, so metrics do not change with the evaluation batch size (tests/eval).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from faerec.data.dataset import Dataset
from faerec.eval.metrics import COVERAGE_KS, KS, Popularity, head_by_share, summarize
from faerec.eval.ranking import check_protocol, rank_targets
from faerec.eval.splits import EvalSplit
from faerec.memory import HeapGuard
from faerec.models.interface import SequentialRecommender

POPULARITY_MODES = ("train", "paper")


def popularity_of(dataset: Dataset, mode: str = "train") -> Popularity:
    """Training-only counts and the prepared head flag, or the labelled paper-compatible variant.

    "paper" counts items over full sequences (validation and test targets included), as the official code
    does for its head/tail metrics, and re-derives the top-20 % head set from those counts.
    """
    if mode == "train":
        return Popularity(dataset.train_count, dataset.is_head, "train")
    if mode == "paper":
        return Popularity(dataset.full_count, head_by_share(dataset.full_count), "paper")
    raise ValueError(f"unknown popularity mode {mode!r}; expected one of {POPULARITY_MODES}")


@dataclass
class Evaluator:
    dataset: Dataset
    max_len: int
    batch_size: int = 512
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    popularity: str = "train"
    protocol: str = "novel"  # the history mask (faerec.eval.ranking): "novel" or "repeat"
    _splits: dict[str, EvalSplit] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        check_protocol(self.protocol)

    def split(self, name: str) -> EvalSplit:
        if name not in self._splits:
            self._splits[name] = EvalSplit.build(self.dataset, name, self.max_len)
        return self._splits[name]

    @torch.no_grad()
    def rank(self, model: SequentialRecommender, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Target ranks [U] (0-based, capped at max K; see rank_targets) and top-K lists [U, max K], in split row order."""
        split = self.split(name)
        top_k = max(max(KS), max(COVERAGE_KS))
        was_training = getattr(model, "training", False)
        if hasattr(model, "eval"):
            model.eval()
        try:
            table = model.item_table().float()
            inputs = split.inputs.to(self.device)
            targets = split.targets.to(self.device)
            hist_items = split.hist_items.to(self.device)
            hist_rows = split.hist_rows.to(self.device)
            ranks, tops = [], []
            guard = HeapGuard()  # score matrices of every batch would otherwise fragment the heap
            for start in range(0, len(split), self.batch_size):
                stop = min(start + self.batch_size, len(split))
                h0, h1 = int(split.hist_ptr[start]), int(split.hist_ptr[stop])
                users = model.user_embedding(inputs[start:stop]).float()
                scores = users @ table.T
                rank, top = rank_targets(
                    scores, targets[start:stop], hist_rows[h0:h1] - start, hist_items[h0:h1], top_k, self.protocol
                )
                ranks.append(rank.cpu())
                tops.append(top.cpu())
                guard.check()
        finally:
            if was_training and hasattr(model, "train"):
                model.train()
        if not ranks:
            return np.zeros(0, dtype=np.int64), np.zeros((0, top_k), dtype=np.int64)
        return torch.cat(ranks).numpy(), torch.cat(tops).numpy()

    def evaluate(self, model: SequentialRecommender, name: str, also: tuple[str, ...] = ()) -> dict:
        """The metrics block for split ``name`` (docs/CONTRACT.md shape) with the pass's wall time in ``seconds``.

        For each popularity mode in ``also`` (e.g. "paper"), the same ranking is re-bucketed under that mode and
        stored as ``<mode>_popularity`` (no second ranking pass; "overall" is identical and left out).
        """
        split = self.split(name)  # built once and cached; not part of the timed pass
        started = time.perf_counter()
        ranks, tops = self.rank(model, name)
        targets = split.targets.numpy()
        result = summarize(ranks, targets, tops, popularity_of(self.dataset, self.popularity), split.repeats,
                           self.protocol)
        if split.n_new_item_targets:  # held-out new items (faerec prepare --new-items): faerec.eval.newitems
            result["n_new_item_targets"] = split.n_new_item_targets
        for mode in also:
            if mode != self.popularity:
                extra = summarize(ranks, targets, tops, popularity_of(self.dataset, mode), split.repeats,
                                  self.protocol)
                for key in ("overall", "protocol", "n_repeat_targets"):
                    extra.pop(key)
                extra["n_targets"].pop("overall")
                result[f"{mode}_popularity"] = extra
        result["seconds"] = time.perf_counter() - started
        return result
