"""Validation beside the next epoch (faerec.train.overlap) changes no result: metrics, history, checkpoints and
resume after a crash are those of the same run validating in line."""

from __future__ import annotations

import threading

import pytest
import torch
from test_train_run import history, small_config, stable, stable_record

from faerec.train import loop, overlap, run


def checkpoint_content(run_dir) -> dict:
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    state.pop("elapsed_seconds")
    state["history"] = [stable_record(r) for r in state["history"]]
    return state


def assert_same_tree(a, b) -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same_tree(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same_tree(x, y)
    else:
        assert a == b


@pytest.mark.parametrize("patience", [50, 1])
def test_overlapped_validation_gives_the_run_of_in_line_validation(tiny_dataset, tmp_path, fake_store, monkeypatch,
                                                                   patience):
    cfg = small_config(epochs=6, patience=patience, lr=0.02)
    threads = set()
    real_evaluate = run.Evaluator.evaluate

    def watched(self, model, name, also=()):
        threads.add(threading.current_thread().name.startswith("faerec-validation"))
        return real_evaluate(self, model, name, also)

    monkeypatch.setattr(run.Evaluator, "evaluate", watched)
    in_line = run.train_run(tiny_dataset, cfg, tmp_path / "a", progress=False, overlap_validation=False)
    assert threads == {False}
    beside = run.train_run(tiny_dataset, cfg, tmp_path / "b", progress=False, overlap_validation=True)
    assert True in threads  # the validations really ran in the background thread
    assert stable(beside) == stable(in_line)
    assert history(tmp_path / "b") == history(tmp_path / "a")
    assert_same_tree(checkpoint_content(tmp_path / "b"), checkpoint_content(tmp_path / "a"))
    best_a = torch.load(tmp_path / "a" / "best.pt", weights_only=True)
    best_b = torch.load(tmp_path / "b" / "best.pt", weights_only=True)
    assert_same_tree(best_b, best_a)
    if patience == 1:  # the early stop after epoch e dropped the epoch e + 1 trained beside its validation
        assert in_line["stop_reason"] == "early_stopping" and in_line["epochs_run"] < 6


def test_crash_while_a_validation_runs_beside_resumes_to_the_same_run(tiny_dataset, tmp_path, fake_store,
                                                                      monkeypatch):
    cfg = small_config(epochs=5)
    reference = run.train_run(tiny_dataset, cfg, tmp_path / "ref", progress=False, overlap_validation=False)
    real_epoch = loop.train_epoch
    calls = {"n": 0}

    def crashing_epoch(*args, **kwargs):
        calls["n"] += 1
        out = real_epoch(*args, **kwargs)
        if calls["n"] == 4:  # epoch 3's validation is running beside: its checkpoint is not written yet
            raise RuntimeError("simulated crash")
        return out

    monkeypatch.setattr(run, "train_epoch", crashing_epoch)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run.train_run(tiny_dataset, cfg, tmp_path / "crash", progress=False, overlap_validation=True)
    assert len(history(tmp_path / "crash")) == 2  # up to two epochs to redo
    monkeypatch.setattr(run, "train_epoch", real_epoch)
    resumed = run.train_run(tiny_dataset, cfg, tmp_path / "crash", resume=True, progress=False,
                            overlap_validation=True)
    assert stable(resumed) == stable(reference)
    assert history(tmp_path / "crash") == history(tmp_path / "ref")


def test_overlap_is_chosen_only_where_it_can_pay(monkeypatch):
    cpu = torch.device("cpu")
    assert not overlap.overlap_wanted(True, torch.device("cuda"), distributed=False)
    assert not overlap.overlap_wanted(True, cpu, distributed=True)
    assert overlap.overlap_wanted(True, cpu, distributed=False)
    monkeypatch.setattr(overlap, "affinity_cores", lambda: 2)
    monkeypatch.setattr(overlap.torch, "get_num_threads", lambda: 1)
    assert overlap.overlap_wanted(None, cpu, distributed=False)
    monkeypatch.setattr(overlap.torch, "get_num_threads", lambda: 2)
    assert not overlap.overlap_wanted(None, cpu, distributed=False)  # its threads already use the cores
    monkeypatch.setattr(overlap.torch, "get_num_threads", lambda: 1)
    monkeypatch.setattr(overlap, "affinity_cores", lambda: 1)
    assert not overlap.overlap_wanted(None, cpu, distributed=False)  # no second core to validate on


def test_the_validation_copy_shares_frozen_inputs_and_owns_its_weights(tiny_dataset, fake_store):
    from faerec.data.dataset import Dataset
    from faerec.eval.evaluator import Evaluator
    from faerec.runs.modelling import model_for, text_tables

    cfg = small_config()
    dataset = Dataset.load(tiny_dataset)
    model = model_for(dataset, cfg, text_tables(dataset, cfg))
    beside = overlap.ValidationThread(model, Evaluator(dataset, cfg.model.max_len))
    try:
        copy_buffers = dict(beside._model.named_buffers())
        assert copy_buffers["embedder.llm_table"].data_ptr() == model.embedder.llm_table.data_ptr()
        copy_params = dict(beside._model.named_parameters())
        for name, param in model.named_parameters():
            assert copy_params[name].data_ptr() != param.data_ptr(), name
        before = model.embedder.llm_table.clone()
        weights = {k: v.clone() + 1 for k, v in model.state_dict().items()}
        beside.submit(weights).result()
        assert torch.equal(model.embedder.llm_table, before)  # loading into the copy left the model alone
        assert not torch.equal(next(model.parameters()), next(beside._model.parameters()))
    finally:
        beside.close()
