"""Top-K recommendations of a finished run, for every user of its dataset or for a given history.

A user's input is the WHOLE known history (training part, validation and test items), of which the model
reads the last ``max_len`` items it has rows for; the ranking masks that history with
faerec.eval.ranking.mask_scores under the ``novel`` protocol (the evaluator's rule; ``include_history`` uses
``repeat``: only padding is masked). Scores are the dot products of ``model.user_embedding`` with the item
table the evaluator uses (``model.item_table()``, computed once), plus the candidate-only items where the
method can represent them (faerec.serve.candidates).

Vectorised: users are scored in batches (one matmul and one ``torch.topk`` per batch), each chunk of users is
encoded in order of input length (rows are independent, faerec.models.interface, so this changes no score)
and written back in the requested order, streamed with pyarrow's ParquetWriter into a temporary file that
is renamed when complete (faerec.io.atomic_path).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from faerec.data.sequences import left_padded_windows
from faerec.errors import FaerecError
from faerec.eval.newitems import history_pairs, history_windows
from faerec.eval.ranking import mask_scores
from faerec.io import atomic_path
from faerec.runs.modelling import TrainedRun, load_trained_run
from faerec.serve.candidates import Catalogue, ScoringTable, scoring_table

CHUNK_BATCHES = 8  # batches per written chunk: users are length-sorted inside a chunk, output keeps their order


class UnknownId(FaerecError):
    """A user or item id that is not in the run's catalogue (the API answers 404)."""


@dataclass
class TopK:
    items: np.ndarray  # int64 [B, k] item_idx, best first; 0 where fewer than k items were left unmasked
    scores: np.ndarray  # float32 [B, k]; -inf in those slots


class Recommender:
    """A finished run loaded once for recommendation: model (eval mode), scoring table, catalogue ids."""

    def __init__(self, run: TrainedRun, batch_size: int = 1024) -> None:
        if batch_size < 1:
            raise FaerecError(f"batch size must be >= 1, got {batch_size}")
        self.run = run
        self.batch_size = batch_size
        self.catalogue = Catalogue.read(run.dataset)
        self.scoring: ScoringTable = scoring_table(run.model, run.dataset, run.cfg)
        self._table_t = self.scoring.table.T.contiguous()  # [D, items]: one matmul per batch
        # the dataset's histories without the items the model has no row for, once (model inputs)
        items = run.dataset.items
        keep = items <= self.scoring.n_trained
        self._kept = items[keep]
        self._before = np.zeros(len(items) + 1, dtype=np.int64)
        np.cumsum(keep, out=self._before[1:])

    @classmethod
    def load(cls, run_dir: str | Path, dataset_dir: str | Path | None = None, device: str | None = None,
             batch_size: int = 1024) -> Recommender:
        return cls(load_trained_run(run_dir, dataset_dir, device), batch_size)

    # --- ids --------------------------------------------------------------------------------------------
    @property
    def n_scorable(self) -> int:
        return self.scoring.n_scorable

    def check_k(self, k: int) -> int:
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= self.n_scorable:
            raise FaerecError(f"k must be an integer between 1 and {self.n_scorable} (the recommendable items), "
                              f"got {k!r}")
        return k

    def user_indices(self, user_ids: Sequence[str]) -> np.ndarray:
        index = self.catalogue.user_index
        unknown = [u for u in user_ids if str(u) not in index]
        if unknown:
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            raise UnknownId(f"unknown user_id {', '.join(map(repr, unknown[:5]))}{more}: not a user of dataset "
                            f"{self.run.dataset.name}")
        return np.fromiter((index[str(u)] for u in user_ids), dtype=np.int64, count=len(user_ids))

    def item_indices(self, item_ids: Sequence[str]) -> np.ndarray:
        index = self.catalogue.item_index
        unknown = [i for i in item_ids if str(i) not in index]
        if unknown:
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            raise UnknownId(f"unknown item_id {', '.join(map(repr, unknown[:5]))}{more}: not in the catalogue of "
                            f"{self.run.dataset.name}")
        return np.fromiter((index[str(i)] for i in item_ids), dtype=np.int64, count=len(item_ids))

    # --- scoring ----------------------------------------------------------------------------------------
    @torch.inference_mode()
    def _top_k(self, inputs: np.ndarray, items: np.ndarray, starts: np.ndarray, ends: np.ndarray, k: int,
               include_history: bool) -> TopK:
        """One batch: model inputs [B, L], and the histories to mask, items[starts[r]:ends[r]] (item_idx,
        candidates allowed)."""
        device = self.run.device
        users = self.run.model.user_embedding(torch.from_numpy(inputs).to(device)).float()
        scores = users @ self._table_t
        rows, index = history_pairs(starts, ends)
        hist = items[index]
        scorable = hist <= self.n_scorable  # candidates outside the table are not columns to mask
        mask_scores(scores, torch.from_numpy(rows[scorable]).to(device),
                    torch.from_numpy(hist[scorable].astype(np.int64)).to(device),
                    "repeat" if include_history else "novel")
        values, top = torch.topk(scores, k, dim=1)
        top = top.masked_fill_(values == float("-inf"), 0)
        return TopK(top.cpu().numpy(), values.cpu().numpy())

    def for_users(self, user_idx: np.ndarray, k: int, include_history: bool = False) -> TopK:
        """Top-k for dataset users (user_idx), in the given order, scored in batches of ``batch_size``."""
        self.check_k(k)
        dataset = self.run.dataset
        user_idx = np.asarray(user_idx, dtype=np.int64)
        starts, ends = dataset.offsets[user_idx], dataset.offsets[user_idx + 1]
        order = np.argsort(np.minimum(ends - starts, self.run.cfg.model.max_len), kind="stable")
        items = np.empty((len(user_idx), k), dtype=np.int64)
        scores = np.empty((len(user_idx), k), dtype=np.float32)
        for first in range(0, len(order), self.batch_size):
            rows = order[first : first + self.batch_size]
            inputs = left_padded_windows(self._kept, self._before[starts[rows]], self._before[ends[rows]],
                                         self.run.cfg.model.max_len)
            top = self._top_k(inputs, dataset.items, starts[rows], ends[rows], k, include_history)
            items[rows], scores[rows] = top.items, top.scores
        return TopK(items, scores)

    def for_history(self, history: np.ndarray, k: int, include_history: bool = False) -> TopK:
        """Top-k for one history of item_idx (oldest first) from outside the dataset; the model reads the last
        ``max_len`` of its trained items, and the whole history is masked (unless ``include_history``)."""
        self.check_k(k)
        history = np.asarray(history, dtype=np.int64)
        starts, ends = np.array([0]), np.array([len(history)])
        inputs = history_windows(history, starts, ends, self.scoring.n_trained, self.run.cfg.model.max_len)
        return self._top_k(inputs, history, starts, ends, k, include_history)

    def rows(self, top: TopK, user_ids: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Flat columns of a TopK: user_id (if given), item_id, score, rank (1 = best); masked slots dropped."""
        real = top.scores > float("-inf")
        ranks = np.broadcast_to(np.arange(1, top.items.shape[1] + 1, dtype=np.int32), top.items.shape)
        out = {"item_id": self.catalogue.item_ids[top.items[real]], "score": top.scores[real].astype(np.float32),
               "rank": ranks[real]}
        if user_ids is not None:
            out = {"user_id": np.repeat(user_ids, real.sum(axis=1)), **out}
        return out

    def describe(self) -> dict[str, Any]:
        s = self.scoring
        out = {"run_dir": str(self.run.run_dir), "dataset": self.run.dataset.name,
               "dataset_dir": str(self.run.dataset.path),
               "backbone": self.run.cfg.model.backbone, "method": self.run.cfg.model.method,
               "users": self.run.dataset.n_users, "trained_items": s.n_trained, "candidate_items": s.n_candidates,
               "candidates_recommendable": s.candidates_scored if s.n_candidates else None,
               "items_scored": s.n_scorable}
        if s.note:
            out["note"] = s.note
        return out


def read_user_file(path: str | Path) -> list[str]:
    """User ids from a Parquet or CSV file with a ``user_id`` column, or a text file with one id per line."""
    import polars as pl

    path = Path(path)
    try:
        if path.suffix == ".parquet":
            frame = pl.read_parquet(path)
        elif path.suffix in (".csv", ".tsv"):
            frame = pl.read_csv(path, separator="\t" if path.suffix == ".tsv" else ",", infer_schema=False)
        else:
            lines = [line.strip() for line in path.read_text().splitlines()]
            return [line for line in lines if line and line != "user_id"]
    except FileNotFoundError:
        raise FaerecError("no such file", path=path) from None
    except Exception as exc:  # noqa: BLE001 - an unreadable file is the user's to fix
        raise FaerecError(f"cannot read user ids ({exc})", path=path) from None
    if "user_id" not in frame.columns:
        raise FaerecError(f"needs a 'user_id' column; found {frame.columns}", path=path)
    return frame["user_id"].cast(pl.Utf8).drop_nulls().to_list()


def _chunks(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def export_recommendations(
    run_dir: str | Path,
    out: str | Path,
    k: int = 10,
    *,
    users: Sequence[str] | None = None,
    include_history: bool = False,
    batch_size: int = 1024,
    dataset_dir: str | Path | None = None,
    device: str | None = None,
    progress: bool = True,
    recommender: Recommender | None = None,
) -> dict[str, Any]:
    """Write the top-``k`` items of every user (or of ``users``, original ids) to ``out`` (Parquet: user_id,
    item_id, score float32, rank int32 with 1 = best); returns the one-line summary."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from tqdm.auto import tqdm

    started = time.perf_counter()
    rec = recommender or Recommender.load(run_dir, dataset_dir, device, batch_size)
    rec.check_k(k)
    user_idx = np.arange(rec.run.dataset.n_users) if users is None else rec.user_indices(list(users))
    out = Path(out)
    schema = pa.schema([("user_id", pa.string()), ("item_id", pa.string()), ("score", pa.float32()),
                        ("rank", pa.int32())])
    n_rows = 0
    chunk = rec.batch_size * CHUNK_BATCHES
    bar = tqdm(total=len(user_idx), unit="user", desc="recommend", disable=not progress, leave=False,
               file=sys.stderr, mininterval=0.5)
    try:
        with atomic_path(out) as tmp, pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            for part in _chunks(len(user_idx), chunk):
                top = rec.for_users(user_idx[part], k, include_history)
                columns = rec.rows(top, rec.catalogue.user_ids[user_idx[part]])
                writer.write_table(pa.table(columns, schema=schema))
                n_rows += len(columns["item_id"])
                bar.update(part.stop - part.start)
            if n_rows == 0:
                writer.write_table(schema.empty_table())
    finally:
        bar.close()
    seconds = time.perf_counter() - started
    return {**rec.describe(), "out": str(out), "users": int(len(user_idx)), "rows": n_rows, "k": k,
            "include_history": include_history, "protocol": "repeat" if include_history else "novel",
            "seconds": round(seconds, 3), "users_per_second": round(len(user_idx) / seconds, 1) if seconds else None}
