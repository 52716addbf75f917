"""A tiny real world for the recommendation tests, built once per session: a catalogue of the bundled sample's
most active users, prepared, embedded with the real MiniLM encoder (offline, bundled; short prompts keep it
fast), and two 1-epoch runs on it (FAERec, which can score items from their text, and the base method)."""

from __future__ import annotations

from pathlib import Path

import pytest
from builders import write_tiny_catalogue
from serve_fixtures import World, config, embed

from faerec.data.prepare import prepare
from faerec.train.run import train_run


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory, sample_dir: Path) -> World:
    import torch

    root = tmp_path_factory.mktemp("serve")
    catalogue = write_tiny_catalogue(sample_dir, root / "catalogue")
    dataset = Path(prepare(str(catalogue), root / "data", progress=False)["path"])
    cache = root / "cache"
    embed(dataset, cache)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread is fastest on a shared machine (tests/conftest.py)
    try:
        runs = {m: Path(train_run(dataset, config(m), root / f"run-{m}", progress=False)["run_dir"])
                for m in ("faerec", "base")}
    finally:
        torch.set_num_threads(threads)
    return World(root, catalogue, dataset, cache, runs)


@pytest.fixture(scope="session")
def faerec_recommender(world: World):
    from faerec.serve.recommend import Recommender

    return Recommender.load(world.runs["faerec"])
