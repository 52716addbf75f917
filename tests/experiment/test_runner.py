"""`faerec experiment` in process: the grid trains once, finished runs are skipped, per-user results, report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from experiment_helpers import FAST, spec_text

from faerec.cli import main as cli_main
from faerec.eval.run import evaluate_run
from faerec.runs import folder


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def metrics_mtimes(root: Path) -> dict[str, int]:
    return {p.parent.name: p.stat().st_mtime_ns for p in root.glob("*/metrics.json")}


def test_experiment_trains_once_skips_finished_runs_and_reports(tiny_dataset, runs_root, fake_store, tmp_path,
                                                              capsys):
    spec = tmp_path / "grid.toml"
    spec.write_text(spec_text(tiny_dataset, methods='["base", "faerec"]', seeds="[1, 2]", epochs=2,
                              tsne='["faerec", "base"]'))
    assert cli_main(["experiment", str(spec), "--no-progress"]) == 0
    out = capsys.readouterr().out
    summary = last_json(out)
    assert (summary["runs"], summary["trained"], summary["skipped"]) == (4, 4, 0)
    report = Path(summary["report"])
    assert report == runs_root / "grid" / "report"
    assert "impr. faerec" in out and "OVERALL" in out  # the terminal table (faerec.report.metrics_table_text)

    runs = sorted(p for p in runs_root.iterdir() if p.name.startswith("tiny-"))
    assert [p.name.split("-c")[0] for p in runs] == ["tiny-sasrec-base-s1", "tiny-sasrec-base-s2",
                                                      "tiny-sasrec-faerec-s1", "tiny-sasrec-faerec-s2"]
    assert all(p.name.endswith("-e2p10") for p in runs)
    for run in runs:
        ranks = pl.read_parquet(run / folder.USER_RANKS)
        assert ranks.columns == ["user_idx", "item_idx", "rank", "group", "is_head", "is_repeat", "train_count"]
        metrics = folder.read_metrics(run)
        assert ranks.height == metrics["n_users_evaluated"] and ranks["user_idx"].is_sorted()
        r = ranks["rank"].to_numpy()
        ndcg = np.where(r < 10, 1 / np.log2(r + 2.0), 0.0)
        assert np.mean(ndcg) == pytest.approx(metrics["test"]["overall"]["ndcg@10"], rel=1e-12)
        tail = r[~ranks["is_head"].to_numpy()]
        assert np.mean(tail < 10) == pytest.approx(metrics["test"]["tail"]["hr@10"], rel=1e-12)
        assert int(ranks["is_repeat"].sum()) == metrics["test"]["n_repeat_targets"]

    manifest = json.loads((runs_root / "grid" / "runs.json").read_text())
    assert [(e["label"], e["seed"], e["status"]) for e in manifest] == [
        ("base", 1, "trained"), ("base", 2, "trained"), ("faerec", 1, "trained"), ("faerec", 2, "trained")]
    for name in ("report.md", "main.md", "main.csv", "significance.md", "groups.md", "coverage.md",
                 "summary.json", "groups-tiny-sasrec.png", "tsne-tiny-sasrec.png"):
        assert (report / name).exists(), name
    text = (report / "report.md").read_text()
    assert "Impr. faerec vs base" in text and "Wilcoxon p" in text and "![t-SNE" in text
    assert "10-NN overlap" in text
    summary_doc = json.loads((report / "summary.json").read_text())
    faerec_row = next(r for r in summary_doc["rows"] if r["label"] == "faerec")
    expected = np.mean([folder.read_metrics(p)["test"]["overall"]["hr@10"] for p in runs if "faerec" in p.name])
    assert faerec_row["metrics"]["overall"]["hr@10"]["mean"] == pytest.approx(expected, rel=1e-12)

    before = metrics_mtimes(runs_root)
    assert cli_main(["experiment", str(spec), "--no-progress"]) == 0
    again = last_json(capsys.readouterr().out)
    assert (again["runs"], again["trained"], again["skipped"]) == (4, 0, 4)
    assert metrics_mtimes(runs_root) == before


def test_a_run_from_before_user_ranks_gets_them_from_its_best_weights(tiny_dataset, runs_root, tmp_path, capsys):
    spec = tmp_path / "one.toml"
    spec.write_text(spec_text(tiny_dataset, methods='["base"]', epochs=2))
    assert cli_main(["experiment", str(spec), "--no-progress"]) == 0
    run = next(p for p in runs_root.iterdir() if p.name.startswith("tiny-"))
    written = pl.read_parquet(run / folder.USER_RANKS)
    (run / folder.USER_RANKS).unlink()
    assert cli_main(["experiment", str(spec), "--no-progress"]) == 0
    assert last_json(capsys.readouterr().out)["skipped"] == 1
    assert pl.read_parquet(run / folder.USER_RANKS).equals(written)
    # `faerec evaluate --out` puts them beside the other document, leaving the run's own alone
    evaluate_run(run, protocol="repeat", out=run / "metrics-repeat.json")
    repeat = pl.read_parquet(run / "metrics-repeat.user_ranks.parquet")
    assert repeat["user_idx"].equals(written["user_idx"]) and repeat["is_repeat"].equals(written["is_repeat"])
    assert not repeat["rank"].equals(written["rank"])  # nothing masked: history items compete
    assert pl.read_parquet(run / folder.USER_RANKS).equals(written)


def test_rows_with_the_same_configuration_share_one_run(tiny_dataset, runs_root, tmp_path, capsys):
    spec = tmp_path / "shared.toml"
    spec.write_text(spec_text(tiny_dataset, methods='["base"]', epochs=1,
                              tables='[variants]\n"same as base" = { method = "base", dropout = 0.4 }\n'
                                     '"smaller" = { method = "base", dropout = 0.1 }\n'))
    assert cli_main(["experiment", str(spec), "--no-progress"]) == 0
    summary = last_json(capsys.readouterr().out)
    assert (summary["runs"], summary["trained"]) == (2, 2)  # dropout 0.4 is the default: the base run itself
    manifest = json.loads((runs_root / "shared" / "runs.json").read_text())
    assert manifest[0]["run_dir"] == manifest[1]["run_dir"] != manifest[2]["run_dir"]
    assert "Ablation (paper table 3 layout)" in (Path(summary["report"]) / "report.md").read_text()


def test_by_default_each_run_trains_in_its_own_process(tiny_dataset, runs_root, tmp_path, capsys, monkeypatch):
    """A run's peak memory is its own: the experiment's process, holding 600 MB more, is not the one measured."""
    import mmap

    from faerec.memory import resident_mb

    monkeypatch.delenv("FAEREC_EXPERIMENT_IN_PROCESS")
    ballast = mmap.mmap(-1, 600 * 2**20)
    for offset in range(0, len(ballast), mmap.PAGESIZE):
        ballast[offset] = 1
    spec = tmp_path / "two.toml"
    spec.write_text(spec_text(tiny_dataset, methods='["base"]', seeds="[1, 2]", epochs=1))
    assert cli_main(["experiment", str(spec), "--no-progress"]) == 0
    here = resident_mb()
    ballast.close()
    assert last_json(capsys.readouterr().out)["trained"] == 2
    peaks = [json.loads(p.read_text())["memory"]["peak_rss_mb"] for p in runs_root.glob("tiny-*/metrics.json")]
    assert len(peaks) == 2
    assert all(peak < here - 400 for peak in peaks), (peaks, here)


def test_training_in_a_child_process_equals_training_here(tiny_dataset, runs_root):
    from faerec.experiment import runner, spec

    grid = spec.from_dict({"datasets": [str(tiny_dataset)], "methods": ["base"], "epochs": 1,
                           "settings": dict(FAST)})
    job = runner.plan(grid, [runner.prepare_source(str(tiny_dataset))])[0]
    assert runner.train_in_subprocess(job.dataset_dir, job.config, job.run_dir) == "trained"
    child = folder.read_metrics(job.run_dir)
    here = runner.train_locked(job.dataset_dir, job.config, job.run_dir.with_name("here"), progress=False)
    assert here == "trained"
    assert folder.read_metrics(job.run_dir.with_name("here"))["test"] == child["test"]


def test_runs_side_by_side_overlap_get_their_threads_and_match_one_at_a_time(tiny_dataset, runs_root, monkeypatch):
    import time

    from faerec.cores import CoreSplit
    from faerec.experiment import runner, spec

    grid = spec.from_dict({"datasets": [str(tiny_dataset)], "methods": ["base"], "seeds": [1, 2], "epochs": 1,
                           "settings": dict(FAST)})
    jobs = runner.plan(grid, [runner.prepare_source(str(tiny_dataset))])
    real, spans = runner.train_in_subprocess, {}

    def timed(*args, **kwargs):
        began = time.monotonic()
        status = real(*args, **kwargs)
        spans[args[2].name] = (began, time.monotonic(), kwargs["threads"])
        return status

    monkeypatch.setattr(runner, "train_in_subprocess", timed)
    done: list[tuple[str, str]] = []
    runner.train_side_by_side(jobs, CoreSplit(2, 1, "test"), lambda job, status, _s: done.append((job.run_dir.name,
                                                                                                status)))
    assert sorted(done) == sorted((job.run_dir.name, "trained") for job in jobs)
    (a_start, a_end, a_threads), (b_start, b_end, b_threads) = spans.values()
    assert max(a_start, b_start) < min(a_end, b_end) and a_threads == b_threads == 1  # they ran at the same time
    for job in jobs:
        side_by_side = folder.read_metrics(job.run_dir)
        assert side_by_side["threads"]["torch"] == 1
        alone = job.run_dir.with_name(job.run_dir.name + "-alone")
        assert real(job.dataset_dir, job.config, alone, threads=1) == "trained"
        assert folder.read_metrics(alone)["test"] == side_by_side["test"]  # same threads, same numbers


def test_a_failed_run_side_by_side_starts_nothing_more_and_is_raised(tiny_dataset, runs_root, monkeypatch):
    import time

    from faerec.cores import CoreSplit
    from faerec.errors import FaerecError
    from faerec.experiment import runner, spec

    grid = spec.from_dict({"datasets": [str(tiny_dataset)], "methods": ["base"], "seeds": [1, 2, 3, 4],
                           "epochs": 1, "settings": dict(FAST)})
    jobs = runner.plan(grid, [runner.prepare_source(str(tiny_dataset))])
    calls: list[int] = []

    def fake(dataset_dir, cfg, run_dir, threads=None):
        calls.append(cfg.seed)
        if cfg.seed == 1:
            time.sleep(0.2)  # seed 2 is running by then
            raise FaerecError("training failed (exit 1): boom", path=run_dir)
        time.sleep(0.5)
        return "trained"

    monkeypatch.setattr(runner, "train_in_subprocess", fake)
    done: list[int] = []
    with pytest.raises(FaerecError, match="boom"):
        runner.train_side_by_side(jobs, CoreSplit(2, 1, "test"), lambda job, status, _s: done.append(job.point.seed))
    assert sorted(calls) == [1, 2] and done == [2]  # seed 2 was running and finished; 3 and 4 never started


def test_a_source_is_prepared_again_only_when_its_files_changed(tmp_path, runs_root):
    import os

    from builders import markov_sequences

    from faerec.experiment import runner

    source = tmp_path / "shop"
    source.mkdir()
    rows = [f"u{u},i{i},{t}" for u, seq in enumerate(markov_sequences(60, 20, seed=3, length=(6, 12)))
            for t, i in enumerate(seq)]
    (source / "interactions.csv").write_text("user_id,item_id,timestamp\n" + "\n".join(rows) + "\n")
    (source / "items.jsonl").write_text("".join(json.dumps({"item_id": f"i{i}", "title": f"item {i}"}) + "\n"
                                                for i in range(1, 21)))
    first = runner.prepare_source(str(source), progress=False)
    assert first["dataset_id"] == "shop-u5i5" and "prepared" not in first  # prepare's own summary
    assert runner.prepare_source(str(source), progress=False)["prepared"] == "up to date"
    stats = Path(first["path"]) / "stats.json"
    later = stats.stat().st_mtime_ns + 1_000_000_000
    os.utime(source / "items.jsonl", ns=(later, later))  # the catalogue changed after it was prepared
    assert "prepared" not in runner.prepare_source(str(source), progress=False)
    assert runner.prepare_source(first["path"])["prepared"] == "as is"  # a prepared folder is used as is


def test_a_sweep_report_names_its_files_and_draws_the_default_point(tiny_dataset, runs_root, tmp_path, capsys):
    from faerec.experiment import reporting, spec

    path = tmp_path / "sweep.toml"
    path.write_text(spec_text(tiny_dataset, methods='["base"]', epochs=1, tables="[sweep]\ndropout = [0.2, 0.4]\n"))
    assert cli_main(["experiment", str(path), "--no-progress"]) == 0
    report = Path(last_json(capsys.readouterr().out)["report"])
    assert {"sweep-dropout.md", "sweep-dropout.csv", "sweep-dropout.png"} <= {p.name for p in report.iterdir()}
    grid = spec.load(path)
    agg = reporting.aggregate(json.loads((runs_root / "sweep" / "runs.json").read_text()), grid.reference)
    assert reporting._group_labels(grid, agg, "tiny", "sasrec") == ["base [dropout=0.4]"]  # 0.4 is the default
    (report / "old-figure.png").write_bytes(b"")  # a file an earlier version of the spec wrote
    assert cli_main(["experiment", str(path), "--no-progress"]) == 0
    assert not (report / "old-figure.png").exists()


def test_a_negative_parallel_is_refused_by_name(tiny_dataset, runs_root, tmp_path, capsys):
    spec = tmp_path / "one.toml"
    spec.write_text(spec_text(tiny_dataset, methods='["base"]', seeds="[1]", epochs=1))
    assert cli_main(["experiment", str(spec), "--parallel", "-1"]) == 2
    assert "--parallel must be >= 0" in capsys.readouterr().err
