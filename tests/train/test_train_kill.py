"""A training process killed with SIGKILL resumes (`faerec train --resume`) to the uninterrupted result."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import faerec
from faerec.cli import main as cli_main

ROOT = Path(faerec.__file__).resolve().parents[1]
EPOCHS = 6


def train_argv(dataset: Path, out: Path) -> list[str]:
    return ["train", str(dataset), "--method", "base", "--epochs", str(EPOCHS), "--patience", "100",
            "--hidden", "16", "--max-len", "8", "--set", "heads=1", "--set", "layers=1", "--batch-size", "16",
            "--device", "cpu", "--out", str(out), "--no-progress"]


def history_lines(run_dir: Path) -> int:
    path = run_dir / "history.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


def stable_metrics(run_dir: Path) -> dict:
    doc = json.loads((run_dir / "metrics.json").read_text())
    return {k: v for k, v in doc.items() if k not in ("timing", "memory")}


def test_sigkill_then_resume_equals_uninterrupted(tiny_dataset, tmp_path, capsys):
    killed = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1",  # the same thread count as the in-process runs (conftest)
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen([sys.executable, "-m", "faerec.cli", *train_argv(tiny_dataset, killed)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    try:
        while history_lines(killed) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read().decode()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    done = history_lines(killed)
    assert 2 <= done < EPOCHS and not (killed / "metrics.json").exists()

    assert cli_main([*train_argv(tiny_dataset, killed), "--resume"]) == 0
    straight = tmp_path / "straight"
    assert cli_main(train_argv(tiny_dataset, straight)) == 0
    capsys.readouterr()
    assert stable_metrics(killed) == stable_metrics(straight)
    assert stable_metrics(killed)["epochs_run"] == EPOCHS
