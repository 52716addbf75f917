"""Data-parallel training (faerec.train.distributed, `torchrun -m faerec.train.ddp`): the sharded, scaled loss
gives the global batch's gradient; the DDP path in one process equals a plain run; two real gloo processes
match one process; a killed two-process run resumes to the uninterrupted result."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from builders import dataset_from_sequences, markov_sequences

import faerec
from faerec.cli import main as cli_main
from faerec.errors import FaerecError
from faerec.models import ModelConfig, build_model
from faerec.runs.config import TrainConfig
from faerec.train import ddp, distributed, run
from faerec.train.distributed import World, loss_scale, shard
from faerec.train.negatives import NegativeSampler
from faerec.train.sequences import TrainingExamples

ROOT = Path(faerec.__file__).resolve().parents[1]
VOLATILE = ("timing", "memory", "run_dir")
TORCHRUN_ENV = {"OMP_NUM_THREADS": "1",  # one thread per process, like the in-process runs (tests/conftest.py)
                "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
# 160 examples in batches of 53: the last global batch has 1 row, so rank 1 takes the borrowed-row path
BATCH = 53


def stable(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in VOLATILE}


def history(run_dir: Path) -> list[dict]:
    lines = (run_dir / "history.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if not k.endswith("seconds") and k != "examples_per_second"}
            for line in lines]


# --- the gradient arithmetic, in one process ----------------------------------------------------------------


def _batch_and_model(method: str):
    sequences = markov_sequences(60, 40, seed=3)
    data = dataset_from_sequences(sequences, 40)
    examples = TrainingExamples.build(data, 8)
    rows = torch.arange(len(examples))[:32]
    sampler = NegativeSampler(data, torch.Generator().manual_seed(0))
    targets, users = examples.targets[rows], examples.users[rows]
    batch = (examples.inputs[rows], targets, sampler.sample(users, targets != 0), users)
    torch.manual_seed(0)
    cfg = ModelConfig.create(backbone="sasrec", method=method, hidden=16, layers=1, heads=1, max_len=8, dropout=0.0,
                             **({"llm_dropout": 0.0, "gate_dropout": 0.0} if method == "faerec" else {}))
    llm = torch.nn.functional.normalize(torch.randn(41, 24), dim=1)
    pca = torch.randn(41, 16)
    text = method == "faerec"
    model = build_model(cfg, 40, llm if text else None, pca if text else None,
                        torch.from_numpy(data.train_count), data)
    return model.train(), batch


def _gradients(model, losses) -> torch.Tensor:
    model.zero_grad(set_to_none=False)
    for loss in losses:
        loss.backward()
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.requires_grad])


def _single_and_sharded(method: str, world_size: int, rows: slice = slice(None)):
    model, batch = _batch_and_model(method)
    batch = tuple(t[rows] for t in batch)
    inputs, targets, negatives, users = batch
    single = _gradients(model, [model.training_loss(inputs, targets, negatives, 0, users=users)[0]])
    losses = []
    for rank in range(world_size):
        world = World(rank=rank, size=world_size, active=True)
        inputs, targets, negatives, users, share = shard(world, *batch)
        loss, _ = model.training_loss(inputs, targets, negatives, 0, users=users)
        losses.append(loss * loss_scale(share, world))
    sharded = _gradients(model, losses) / world_size  # DDP's mean over the ranks
    return single, sharded


@pytest.mark.parametrize("world_size", [2, 3])
def test_scaled_shards_give_the_global_batch_gradient_for_bce(world_size):
    single, sharded = _single_and_sharded("base", world_size)
    assert (single - sharded).abs().max() < 1e-6
    assert float((single - sharded).norm() / single.norm()) < 1e-6
    # a last batch with fewer rows than ranks: the rank without rows borrows one with share 0
    single, sharded = _single_and_sharded("base", world_size, rows=slice(0, 1))
    assert (single - sharded).abs().max() < 1e-6


def test_faerec_batch_losses_are_approximated_and_the_difference_is_measured():
    """InfoNCE / Barlow Twins over a batch's distinct items do not decompose over rows: the sharded update is
    the token-weighted mean of per-shard losses. On this batch (32 rows, 2 ranks) its gradient differs from
    the global batch's by 0.3 % (relative L2), while the BCE part alone is exact (test above)."""
    single, sharded = _single_and_sharded("faerec", 2)
    relative = float((single - sharded).norm() / single.norm())
    print(f"FAERec gradient, 2 shards vs global batch: relative L2 difference {relative:.3g}")
    assert 1e-6 < relative < 0.05


def test_shard_takes_every_world_th_row_and_its_token_share():
    targets = torch.tensor([[0, 1, 2], [3, 4, 5], [0, 0, 6], [7, 8, 9], [0, 1, 1]])
    inputs, negatives, users = targets.clone(), targets.clone(), torch.arange(5)
    local_inputs, local_targets, _, local_users, share = shard(World(1, 2, active=True), inputs, targets,
                                                               negatives, users)
    assert local_users.tolist() == [1, 3] and torch.equal(local_targets, targets[1::2])
    assert share == 6 / 11 and loss_scale(share, World(1, 2, active=True)) == 12 / 11
    assert shard(World(4, 6, active=True), inputs, targets, negatives, users)[-1] == 2 / 11
    *_, share = shard(World(5, 6, active=True), inputs, targets, negatives, users)
    assert share == 0.0  # no row for rank 5: a borrowed row that contributes nothing


def test_rank_seeds_differ_per_rank_seed_and_epoch():
    seeds = {distributed.rank_seed(s, r, e) for s in (1, 2) for r in (1, 2) for e in (0, 1)}
    assert len(seeds) == 8 and all(0 <= s < 2**63 for s in seeds)


# --- the DDP path in one process (a gloo group of one) -------------------------------------------------------


def small_config(method: str = "faerec", **changes) -> TrainConfig:
    model = ModelConfig.create(backbone="sasrec", method=method, hidden=16, layers=1, heads=1, max_len=8)
    return TrainConfig(model=model, epochs=2, patience=50, batch_size=BATCH, device="cpu").replace(**changes)


def test_ddp_path_with_one_process_equals_a_plain_run(tiny_dataset, tmp_path, fake_store):
    cfg = small_config(epochs=3)  # FAERec with dropout: every loss part, every random stream
    plain = run.train_run(tiny_dataset, cfg, tmp_path / "plain", progress=False)
    dist.init_process_group("gloo", rank=0, world_size=1, store=dist.HashStore())
    try:
        assert distributed.current().active
        grouped = run.train_run(tiny_dataset, cfg, tmp_path / "grouped", progress=False)
        # resume inside the group from a 2-epoch checkpoint (rank_rng restored) to the same 3 epochs
        run.train_run(tiny_dataset, cfg.replace(epochs=2), tmp_path / "resumed", progress=False)
        resumed = run.train_run(tiny_dataset, cfg, tmp_path / "resumed", resume=True, progress=False)
    finally:
        dist.destroy_process_group()
    assert stable(grouped) == stable(plain) == stable(resumed)
    assert history(tmp_path / "grouped") == history(tmp_path / "plain") == history(tmp_path / "resumed")
    assert grouped["timing"]["processes"] == 1 and "processes" not in plain["timing"]
    saved = torch.load(tmp_path / "grouped" / "checkpoint.pt", weights_only=True)
    assert len(saved["rank_rng"]) == 1


def test_train_under_torchrun_without_a_process_group_is_refused(tiny_dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(FaerecError, match="faerec.train.ddp"):
        run.train_run(tiny_dataset, small_config("base"), tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()


def test_ddp_entry_outside_torchrun_is_a_clear_error(tiny_dataset, tmp_path, monkeypatch, capsys):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert ddp.main([str(tiny_dataset), "--method", "base", "--out", str(tmp_path / "r")]) == 2
    assert "not started by torchrun" in capsys.readouterr().err


# --- real processes ---------------------------------------------------------------------------------------


def train_argv(dataset: Path, out: Path, epochs: int, *extra: str) -> list[str]:
    return [str(dataset), "--method", "base", "--epochs", str(epochs), "--patience", "100", "--hidden", "16",
            "--max-len", "8", "--set", "heads=1", "--set", "layers=1", "--batch-size", str(BATCH),
            "--device", "cpu", "--out", str(out), "--no-progress", *extra]


def torchrun(argv: list[str], nproc: int = 2) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
            "-m", "faerec.train.ddp", *argv]


def run_torchrun(argv: list[str]) -> subprocess.CompletedProcess:
    """One torchrun run; retried once, from scratch, when a rank died by SIGABRT from inside gloo.

    CI once saw rank 1 abort ("terminate called without an active exception") in a run that 31 local repeats,
    under load and without, never reproduced; gloo's TCP transport has open reports of such aborts (e.g.
    pytorch/pytorch#188266). A second abort, or any other failure, fails the test.
    """
    def once() -> subprocess.CompletedProcess:
        return subprocess.run(torchrun(argv), env={**os.environ, **TORCHRUN_ENV}, capture_output=True, text=True,
                              timeout=600)

    done = once()
    if done.returncode != 0 and "Signal 6 (SIGABRT)" in done.stderr:
        warnings.warn(f"a torchrun rank aborted (SIGABRT), retrying once: {done.stderr[-600:]}", stacklevel=2)
        out = Path(argv[argv.index("--out") + 1])
        if "--resume" not in argv:
            shutil.rmtree(out, ignore_errors=True)  # a fresh run starts from an empty folder
        done = once()
    assert done.returncode == 0, done.stderr[-4000:]
    return done


def test_two_processes_match_one_process_with_the_same_global_batch(tiny_dataset, tmp_path, capsys):
    """BCE only (base method, dropout 0), 1 epoch: 2 gloo processes vs one process, same global batch."""
    two, one = tmp_path / "two", tmp_path / "one"
    done = run_torchrun(train_argv(tiny_dataset, two, 1, "--set", "dropout=0"))
    summaries = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(summaries) == 1 and json.loads(summaries[0])["run_dir"] == str(two)  # rank 0 alone prints
    assert cli_main(["train", *train_argv(tiny_dataset, one, 1, "--set", "dropout=0")]) == 0
    capsys.readouterr()
    for name in ("config.json", "checkpoint.pt", "history.jsonl", "best.pt", "metrics.json"):
        assert (two / name).exists(), name

    a = torch.load(one / "checkpoint.pt", weights_only=True)["model"]
    b = torch.load(two / "checkpoint.pt", weights_only=True)["model"]
    param_diff = max(float((a[k] - b[k]).abs().max()) for k in a)
    h1, h2 = history(one)[0], history(two)[0]
    ndcg_diff = abs(h1["valid"]["overall"]["ndcg@20"] - h2["valid"]["overall"]["ndcg@20"])
    with capsys.disabled():
        print(f"\n2 processes vs 1, 1 epoch: max |param diff| {param_diff:.3g}, |valid ndcg@20 diff| {ndcg_diff:.3g}, "
              f"loss {h2['loss']:.8f} vs {h1['loss']:.8f}")
    assert param_diff < 1e-5
    assert h2["loss"] == pytest.approx(h1["loss"], rel=1e-6)
    assert ndcg_diff < 2e-3  # a near-tie can flip one ranking; here both agree exactly
    metrics = json.loads((two / "metrics.json").read_text())
    assert metrics["timing"]["processes"] == 2 and metrics["device"] == "cpu"


def _history_lines(run_dir: Path) -> int:
    path = run_dir / "history.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the torchrun workers through /proc")
def test_killed_two_process_run_resumes_to_the_uninterrupted_result(tiny_dataset, tmp_path):
    """SIGKILL both workers after their first checkpoint, resume under torchrun: the uninterrupted metrics.
    Default dropout (0.4), so each rank's own dropout stream must be restored from the checkpoint too."""
    epochs = 6
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    run_torchrun(train_argv(tiny_dataset, straight, epochs))

    agent = subprocess.Popen(torchrun(train_argv(tiny_dataset, killed, epochs)), env={**os.environ, **TORCHRUN_ENV},
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while _history_lines(killed) < 1 and agent.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        workers = _children(agent.pid)  # torchrun starts each worker in its own session: kill them by id
        assert agent.poll() is None and len(workers) == 2, agent.stderr.read().decode()[-4000:]
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
    finally:
        agent.wait(timeout=120)
    done = _history_lines(killed)
    print(f"\nkilled after {done} of {epochs} epochs")
    assert 1 <= done < epochs and not (killed / "metrics.json").exists()

    run_torchrun(train_argv(tiny_dataset, killed, epochs, "--resume"))
    assert stable(json.loads((killed / "metrics.json").read_text())) == stable(
        json.loads((straight / "metrics.json").read_text()))
    assert history(killed) == history(straight)
    best_a = torch.load(straight / "best.pt", weights_only=True)
    best_b = torch.load(killed / "best.pt", weights_only=True)
    assert best_a["epoch"] == best_b["epoch"]
    assert all(torch.equal(best_a["model"][k], best_b["model"][k]) for k in best_a["model"])
