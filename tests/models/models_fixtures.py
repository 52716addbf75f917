"""Helpers for model tests: a tiny random world (a few dozen items, short sequences, small hidden size)."""

from __future__ import annotations

import torch

from faerec.models import ModelConfig, build_model

N_ITEMS = 40
LLM_DIM = 24


def make_world():
    gen = torch.Generator().manual_seed(7)
    llm = torch.nn.functional.normalize(torch.randn(N_ITEMS + 1, LLM_DIM, generator=gen), dim=-1)
    llm[0] = 0
    counts = torch.randint(0, 30, (N_ITEMS + 1,), generator=gen)
    counts[0] = 0
    return llm, counts


def world_dataset():
    """80 users over the world's items, for methods that read users' sequences (e.g. LLM-ESR)."""
    from builders import dataset_from_sequences, markov_sequences

    return dataset_from_sequences(markov_sequences(80, N_ITEMS, seed=3), N_ITEMS)


def make_model(world, seed: int = 0, **overrides):
    llm, counts = world
    fields = {"hidden": 16, "layers": 2, "max_len": 12, "dropout": 0.2, **overrides}
    torch.manual_seed(seed)
    return build_model(ModelConfig.create(**fields), N_ITEMS, llm, None, counts, world_dataset())


def left_padded(lengths: list[int], length: int, seed: int = 0) -> torch.Tensor:
    """[len(lengths), length] random item ids, row i holding lengths[i] items at the right end."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, N_ITEMS + 1, (len(lengths), length), generator=gen)
    real = torch.arange(length)[None, :] >= (length - torch.tensor(lengths))[:, None]
    return ids * real


def training_batch(lengths: list[int], length: int, seed: int = 0):
    inputs = left_padded(lengths, length + 1, seed)
    real = inputs[:, :-1] != 0
    gen = torch.Generator().manual_seed(seed + 1)
    negatives = torch.randint(1, N_ITEMS + 1, (len(lengths), length), generator=gen) * real
    # pos_ids[t] is the item after input_ids[t]; a row's first item only ever appears as an input
    return inputs[:, :-1] * (inputs[:, 1:] != 0), inputs[:, 1:] * real, negatives
