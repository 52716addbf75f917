"""Fixtures for the text-embedding tests."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from text_fixtures import real_items, write_dataset


@pytest.fixture
def make_dataset(tmp_path):
    def make(n: int = 40, name: str = "ds", domain: str = "product", items: pl.DataFrame | None = None) -> Path:
        return write_dataset(tmp_path / name, real_items(n) if items is None else items, domain)

    return make


CORPUS = [
    "the product has following attributes name is lip balm brand is acme price is unknown",
    "the item has following features beauty lips skin care face creams",
    "the item has following descriptions soft shiny red blue green staples steel relay",
]


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory):
    """A randomly initialised 2-layer LLaMA (hidden 32) with a word-level tokenizer, saved like a real model."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaModel, PreTrainedTokenizerFast

    words = sorted({w for line in CORPUS for w in line.split()})
    vocab = {tok: i for i, tok in enumerate(["<unk>", "<s>", "</s>", *words])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    config = LlamaConfig(
        vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-llama")
    LlamaModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
