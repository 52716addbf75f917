"""The re-embedding flow's choice of run: the latest finished run of exactly that dataset."""

from __future__ import annotations

import json
import os

from flows.reembed import latest_finished_run


def _run(root, name, dataset, mtime, finished=True):
    folder = root / name
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"dataset": dataset}))
    if finished:
        (folder / "metrics.json").write_text("{}")
        os.utime(folder / "metrics.json", (mtime, mtime))
    return folder


def test_latest_finished_run_of_the_dataset(tmp_path):
    assert latest_finished_run("ds-u5i5", tmp_path) is None
    _run(tmp_path, "ds-u5i5-sasrec-base-s1-caaaa", "ds-u5i5", 100)
    newest = _run(tmp_path, "ds-u5i5-sasrec-faerec-s1-cbbbb", "ds-u5i5", 200)
    _run(tmp_path, "ds-u5i5-sasrec-faerec-s2-ccccc", "ds-u5i5", 300, finished=False)  # still training
    _run(tmp_path, "ds-u5i5-new0.1s2024-sasrec-base-s1-cdddd", "ds-u5i5-new0.1s2024", 400)  # another dataset
    assert latest_finished_run("ds-u5i5", tmp_path) == newest
