"""`faerec experiment` killed with SIGKILL mid-grid: the next call trains only the unfinished runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from experiment_helpers import spec_text

import faerec
from faerec.cli import main as cli_main

ROOT = Path(faerec.__file__).resolve().parents[1]
SEEDS = [1, 2, 3, 4]
EPOCHS = 8


def finished(runs: Path) -> dict[str, int]:
    return {p.parent.name: p.stat().st_mtime_ns for p in runs.glob("tiny-*/metrics.json")}


def test_sigkill_mid_grid_then_rerun_trains_only_the_unfinished(tiny_dataset, tmp_path, monkeypatch, capsys):
    runs = tmp_path / "runs"
    spec = tmp_path / "grid.toml"
    spec.write_text(spec_text(tiny_dataset, methods='["base"]', seeds=json.dumps(SEEDS), epochs=EPOCHS,
                              patience=100))
    # the default: each run in a child process, which must die with the experiment (else the orphan would
    # finish its run behind the rerun's back, and the rerun would count it as skipped)
    env = {**os.environ, "FAEREC_RUNS_DIR": str(runs), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.pop("FAEREC_EXPERIMENT_IN_PROCESS", None)
    proc = subprocess.Popen([sys.executable, "-m", "faerec.cli", "experiment", str(spec), "--no-progress"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 240
    try:
        while not finished(runs) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
        proc.stderr.close()
    done = finished(runs)
    assert 1 <= len(done) < len(SEEDS)

    monkeypatch.setenv("FAEREC_RUNS_DIR", str(runs))
    assert cli_main(["experiment", str(spec), "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (summary["runs"], summary["trained"], summary["skipped"]) == (
        len(SEEDS), len(SEEDS) - len(done), len(done))
    after = finished(runs)
    assert len(after) == len(SEEDS)
    assert {name: after[name] for name in done} == done  # finished runs were not touched
    for name in after:
        history = (runs / name / "history.jsonl").read_text().splitlines()
        assert len(history) == EPOCHS  # the interrupted run resumed; none ran twice
