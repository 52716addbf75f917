"""Helpers shared by the experiment tests: the fast settings and a spec writer."""

from __future__ import annotations

import json
from pathlib import Path

# small and fast: every run of these tests uses these settings (a spec's [settings] table)
FAST = {"hidden": 16, "layers": 1, "max_len": 8, "batch_size": 32, "device": "cpu", "eval_batch_size": 64}


def spec_text(dataset: Path, tables: str = "", **top) -> str:
    """A TOML spec over ``dataset`` with the FAST settings; ``top`` adds top-level keys (TOML literals) and
    ``tables`` more tables ([variants], [sweep]) at the end."""
    lines = [f'datasets = ["{dataset}"]']
    lines += [f"{k} = {v}" for k, v in top.items()]
    lines += ["[settings]", *[f"{k} = {json.dumps(v)}" for k, v in FAST.items()]]
    return "\n".join(lines) + "\n" + tables
