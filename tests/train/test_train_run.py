"""Training runs end to end on tiny data: files, determinism, resume after a crash, CLI, `faerec evaluate`."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from faerec.cli import main as cli_main
from faerec.errors import FaerecError
from faerec.eval.run import evaluate_run
from faerec.models import ModelConfig
from faerec.runs.config import TrainConfig
from faerec.train import loop, run
from faerec.train.loop import EarlyStopping

VOLATILE = ("timing", "memory", "run_dir")


def small_config(method: str = "faerec", **changes) -> TrainConfig:
    model = ModelConfig.create(backbone="sasrec", method=method, hidden=16, layers=1, heads=1, max_len=8)
    return TrainConfig(model=model, epochs=5, patience=50, batch_size=32, device="cpu").replace(**changes)


def stable(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in VOLATILE}


def stable_record(record: dict) -> dict:
    """A history line without its timings."""
    return {k: v for k, v in record.items() if not k.endswith("seconds") and k != "examples_per_second"}


def history(run_dir) -> list[dict]:
    return [stable_record(json.loads(line)) for line in (run_dir / "history.jsonl").read_text().splitlines()]


def test_run_writes_contract_files_and_is_deterministic(tiny_dataset, tmp_path, fake_store):
    cfg = small_config(epochs=3)
    first = run.train_run(tiny_dataset, cfg, tmp_path / "a", progress=False)
    second = run.train_run(tiny_dataset, cfg, tmp_path / "b", progress=False)
    assert stable(first) == stable(second)
    assert history(tmp_path / "a") == history(tmp_path / "b")
    for name in ("config.json", "checkpoint.pt", "history.jsonl", "best.pt", "metrics.json"):
        assert (tmp_path / "a" / name).exists(), name
    on_disk = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert on_disk == {k: v for k, v in first.items() if k != "run_dir"}
    assert set(on_disk) >= {"dataset", "backbone", "method", "seed", "best_epoch", "epochs_run",
                            "n_users_evaluated", "n_users_skipped", "test", "valid", "timing", "device"}
    assert on_disk["epochs_run"] == 3 and 1 <= on_disk["best_epoch"] <= 3 and on_disk["device"] == "cpu"
    assert set(on_disk["timing"]) >= {"train_seconds_per_epoch", "eval_seconds", "total_seconds"}
    assert on_disk["threads"]["torch"] == torch.get_num_threads() and on_disk["threads"]["omp_wait_policy"]
    assert on_disk["test"]["groups"].keys() == {"1-4", "5-9", "10-19", "20-49", "50+"}
    assert ("pca", 16) in fake_store  # FAERec read its LLM table and PCA through the store
    lines = history(tmp_path / "a")
    assert [r["epoch"] for r in lines] == [1, 2, 3]
    assert {"loss", "rec", "valid"} <= set(lines[0])
    best = max(lines, key=lambda r: r["valid"]["overall"]["ndcg@20"])
    assert best["epoch"] == on_disk["best_epoch"]
    assert on_disk["valid"] == best["valid"]  # valid metrics are those of the best epoch


def test_resume_after_a_crash_equals_an_uninterrupted_run(tiny_dataset, tmp_path, fake_store, monkeypatch):
    cfg = small_config(epochs=5)
    reference = run.train_run(tiny_dataset, cfg, tmp_path / "ref", progress=False)

    real_epoch = loop.train_epoch
    calls = {"n": 0}

    def crashing_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:  # die in the middle of the 4th epoch, after 3 checkpoints
            real_epoch(*args, **kwargs)
            raise RuntimeError("simulated crash")
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(run, "train_epoch", crashing_epoch)
    with pytest.raises(RuntimeError, match="simulated crash"):
        # in line: with the validation beside the next epoch, epoch 3's checkpoint would wait for it (test_train_overlap)
        run.train_run(tiny_dataset, cfg, tmp_path / "crash", progress=False, overlap_validation=False)
    assert len(history(tmp_path / "crash")) == 3
    assert not (tmp_path / "crash" / "metrics.json").exists()
    monkeypatch.setattr(run, "train_epoch", real_epoch)
    resumed = run.train_run(tiny_dataset, cfg, tmp_path / "crash", resume=True, progress=False)
    assert stable(resumed) == stable(reference)
    assert history(tmp_path / "crash") == history(tmp_path / "ref")
    best_a = torch.load(tmp_path / "ref" / "best.pt", weights_only=True)
    best_b = torch.load(tmp_path / "crash" / "best.pt", weights_only=True)
    assert best_a["epoch"] == best_b["epoch"]
    assert all(torch.equal(best_a["model"][k], best_b["model"][k]) for k in best_a["model"])


def test_a_finished_run_resumes_to_the_same_metrics_and_can_be_extended(tiny_dataset, tmp_path):
    cfg = small_config("base", epochs=2)
    done = run.train_run(tiny_dataset, cfg, tmp_path / "r", progress=False)
    again = run.train_run(tiny_dataset, cfg, tmp_path / "r", resume=True, progress=False)
    assert stable(again) == stable(done)
    longer = run.train_run(tiny_dataset, cfg.replace(epochs=4), tmp_path / "r", resume=True, progress=False)
    straight = run.train_run(tiny_dataset, cfg.replace(epochs=4), tmp_path / "s", progress=False)
    assert longer["epochs_run"] == 4 and stable(longer) == stable(straight)


def test_refuses_to_overwrite_or_to_resume_with_another_configuration(tiny_dataset, tmp_path):
    cfg = small_config("base", epochs=1)
    run.train_run(tiny_dataset, cfg, tmp_path / "r", progress=False)
    with pytest.raises(FaerecError, match="already holds a checkpoint"):
        run.train_run(tiny_dataset, cfg, tmp_path / "r", progress=False)
    with pytest.raises(FaerecError, match=r"changed: lr, model.hidden"):
        run.train_run(tiny_dataset, cfg.replace(lr=0.01, hidden=32), tmp_path / "r", resume=True, progress=False)
    with pytest.raises(FaerecError, match="unknown setting"):
        cfg.replace(hiden=3)


def test_early_stopping_bookkeeping():
    stop = EarlyStopping()
    assert stop.update(0.1, 1, lambda: {"w": torch.ones(1)})
    assert not stop.update(0.1, 2, dict)  # equal is not an improvement
    assert not stop.update(float("nan"), 3, dict)
    assert stop.should_stop(patience=2) and not stop.should_stop(patience=3)
    assert stop.update(0.2, 4, dict) and stop.bad_checks == 0 and stop.best_epoch == 4
    assert EarlyStopping.from_dict(stop.to_dict()) == stop


def test_cli_train_then_evaluate(tiny_dataset, tmp_path, capsys):
    out = tmp_path / "cli-run"
    argv = ["train", str(tiny_dataset), "--method", "base", "--epochs", "2", "--hidden", "16", "--max-len", "8",
            "--set", "heads=1", "--set", "layers=1", "--batch-size", "64", "--device", "cpu", "--out", str(out),
            "--no-progress"]
    assert cli_main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["run_dir"] == str(out) and summary["epochs_run"] == 2 and summary["method"] == "base"
    trained = json.loads((out / "metrics.json").read_text())
    saved = json.loads((out / "config.json").read_text())["train"]
    assert saved["model"]["backbone_options"]["heads"] == 1 and saved["batch_size"] == 64

    assert cli_main(["evaluate", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["test_ndcg@10"] == trained["test"]["overall"]["ndcg@10"]
    rewritten = json.loads((out / "metrics.json").read_text())
    assert rewritten["test"] == trained["test"] and rewritten["valid"] == trained["valid"]
    assert rewritten["best_epoch"] == trained["best_epoch"] and rewritten["epochs_run"] == 2
    assert evaluate_run(out)["test"] == trained["test"]


def test_cli_errors_are_one_clear_line(tiny_dataset, tmp_path, capsys):
    assert cli_main(["train", str(tmp_path / "missing"), "--out", str(tmp_path / "x")]) == 2
    assert "stats.json" in capsys.readouterr().err
    assert cli_main(["train", str(tiny_dataset), "--backbone", "nope", "--out", str(tmp_path / "x")]) == 2
    assert "unknown backbone" in capsys.readouterr().err
    assert cli_main(["evaluate", str(tmp_path)]) == 2
    assert "config.json" in capsys.readouterr().err
    assert cli_main(["train", str(tiny_dataset), "--set", "alpha", "--out", str(tmp_path / "x")]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_dataset_without_evaluable_users_is_remulti(make_processed, tmp_path):
    short = make_processed([[1, 2], [2, 3]], 3)
    with pytest.raises(FaerecError, match="nothing to validate"):
        run.train_run(short, small_config("base"), tmp_path / "r", progress=False)


def test_bf16_autocast_trains_and_cuda_request_without_gpu_is_a_clear_error(tiny_dataset, tmp_path, fake_store):
    result = run.train_run(tiny_dataset, small_config(epochs=1, bf16=True), tmp_path / "bf16", progress=False)
    assert result["test"]["overall"]["hr@20"] is not None
    if not torch.cuda.is_available():
        with pytest.raises(FaerecError, match="no CUDA device"):
            run.train_run(tiny_dataset, small_config(device="cuda"), tmp_path / "cuda", progress=False)


def test_optimizer_is_foreach_adam_and_takes_over_a_for_loop_adam_state():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    cfg = TrainConfig(lr=0.01)
    multi = run.make_optimizer(model, cfg)
    assert multi.defaults["foreach"] and multi.defaults["lr"] == 0.01
    plain_model = torch.nn.Linear(4, 3)
    plain_model.load_state_dict(model.state_dict())
    plain = torch.optim.Adam(plain_model.parameters(), lr=0.01)  # what checkpoints of older runs hold
    x = torch.randn(8, 4)
    for step in range(6):
        if step == 3:  # resume: the multi optimiser continues from the for-loop one's state
            multi.load_state_dict(copy.deepcopy(plain.state_dict()))  # as read back from a checkpoint
            model.load_state_dict(plain_model.state_dict())
        for net, opt in ((model, multi), (plain_model, plain)):
            opt.zero_grad()
            net(x).pow(2).sum().backward()
            opt.step()
    for a, b in zip(model.parameters(), plain_model.parameters(), strict=True):
        assert torch.equal(a, b)
