"""Defaults of the main job (`faerec pipeline` and the `faerec` flow), kept in the library so the CLI can show
them without importing Prefect or pydantic."""

from __future__ import annotations

SAMPLE_SOURCE = "data/sample"

# `faerec pipeline` must finish on the bundled sample in < 10 min on 2 CPU cores (MiniLM embedding of 4,344
# items, then base and FAERec). On the sample, validation NDCG@20 at epoch 20 is within ~5 % (base) and ~2 %
# (FAERec) of epoch 30, at two thirds of the training time. A later run with more epochs resumes from the
# checkpoint (epochs is not part of the run folder's configuration hash).
PIPELINE_EPOCHS = 20
