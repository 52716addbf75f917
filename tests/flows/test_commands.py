"""`faerec pipeline / serve / stop` argument handling and cache keys (no flow runs here)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from faerec.cli import build_parser
from flows import keys
from flows.cli import FLOW_COMMANDS, main
from flows.stack import StackConfig, down


def test_pipeline_help_states_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["pipeline", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "bundled sample" in text and "MiniLM" in text and "ephemeral mode" in text
    args = build_parser(FLOW_COMMANDS).parse_args(["pipeline"])
    assert args.sources == [] and args.methods == ["base", "faerec"] and args.backbones == ["sasrec"]
    assert args.parallel == 0  # automatic: runs side by side where the cores allow


def test_pipeline_rejects_bad_settings_in_one_line(capsys):
    assert main(["pipeline", "--epochs", "0"]) == 2
    assert main(["pipeline", "--backbone", "nope"]) == 2
    assert main(["pipeline", "--parallel", "-1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("faerec pipeline: error: invalid pipeline settings: epochs")
    assert "backbones.0: Input should be" in err[1] and "'sasrec'" in err[1]  # the registered names
    assert "training_processes: Input should be greater than or equal to 0" in err[2]


def test_pipeline_names_an_unreachable_server(capsys, monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        assert main(["pipeline"]) == 2
    assert "http://127.0.0.1:9/api does not answer" in capsys.readouterr().err


def test_stop_without_a_stack_is_a_no_op(tmp_path: Path):
    assert down(StackConfig(state_dir=tmp_path)) == {"stopped": [], "running": False}


def test_prepare_key_follows_the_raw_files(tmp_path: Path):
    (tmp_path / "interactions.csv").write_text("user_id,item_id,timestamp\n")
    first = keys.prepare_key(str(tmp_path), 5, 5)
    assert keys.prepare_key(str(tmp_path), 5, 5) == first
    assert keys.prepare_key(str(tmp_path), 3, 5) != first
    time.sleep(0.01)
    (tmp_path / "interactions.csv").write_text("user_id,item_id,timestamp\nu,i,1\n")
    assert keys.prepare_key(str(tmp_path), 5, 5) != first
    os.utime(tmp_path / "interactions.csv", ns=(1, 1))
    assert keys.prepare_key(str(tmp_path), 5, 5) not in (first,)


def test_run_folder_hash_ignores_resumable_fields():
    from faerec.runs.config import TrainConfig
    from faerec.runs.folder import config_hash

    cfg = TrainConfig(epochs=30)
    assert config_hash(cfg) == config_hash(cfg.replace(epochs=200, patience=3, device="cpu"))
    assert config_hash(cfg) != config_hash(cfg.replace(lr=0.01))
    assert config_hash(cfg) != config_hash(cfg.replace(alpha=0.1, method="faerec"))


def test_stop_group_ends_a_process_and_its_children(tmp_path: Path):
    import signal
    import sys

    from flows import processes

    # a parent that ignores the first SIGTERM (like a Prefect worker) and has a child of its own
    script = ("import signal, subprocess, sys, time\n"
              "signal.signal(signal.SIGTERM, lambda *a: signal.signal(signal.SIGTERM, signal.SIG_DFL))\n"
              "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
              "open(sys.argv[1], 'w').write(str(child.pid))\n"
              "time.sleep(60)\n")
    marker = tmp_path / "child.pid"
    pid = processes.spawn([sys.executable, "-c", script, str(marker)], dict(os.environ), tmp_path / "log",
                          tmp_path)
    deadline = time.monotonic() + 20
    while not (marker.exists() and marker.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    child = int(marker.read_text())
    assert processes.alive(pid) and processes.alive(child)
    assert processes.stop_group(pid, timeout=10, signals=(signal.SIGTERM, signal.SIGTERM))
    assert not processes.alive(pid) and not processes.group_alive(pid)
    deadline = time.monotonic() + 5
    while processes.alive(child) and time.monotonic() < deadline:  # re-parented to init, reaped there
        time.sleep(0.1)
    assert not processes.alive(child)
