"""Time `faerec prepare` on the Beauty 2014 data (5-core as shipped, and its 10-core variant).

    python benchmarks/prepare.py [--repeat 3] [--dataset ../shared/datasets/amazon-beauty-2014]

Prints wall seconds per run (best and median of --repeat) and the bare time to read the two files with
polars, the floor that prepare is measured against.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=str(ROOT.parent / "shared" / "datasets" / "amazon-beauty-2014"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    dataset = Path(args.dataset)
    if not dataset.exists():
        sys.exit(f"{dataset}: not found (the Beauty data lives in ../shared/datasets)")

    import polars as pl

    from faerec.data.prepare import prepare

    read = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        pl.read_csv(dataset / "interactions.csv.gz")
        pl.read_ndjson(dataset / "items.jsonl.gz")
        read.append(time.perf_counter() - t)
    print(f"bare polars read of both files: best {min(read):.3f} s")

    with tempfile.TemporaryDirectory() as tmp:
        for k in (5, 10):
            times, summary = [], {}
            for r in range(args.repeat):
                t = time.perf_counter()
                summary = prepare(str(dataset), Path(tmp) / f"k{k}-{r}", min_user=k, min_item=k, progress=False)
                times.append(time.perf_counter() - t)
            print(f"prepare k={k:<2} (in-process): best {min(times):.3f} s, median {statistics.median(times):.3f} s"
                  f"  -> {summary['users']} users, {summary['items']} items, {summary['interactions']} interactions")
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "faerec.cli", "prepare", str(dataset), "--out", str(Path(tmp) / "cli"),
                        "--quiet"], check=True, capture_output=True)
        print(f"faerec prepare (CLI, wall incl. interpreter start and imports): {time.perf_counter() - t:.3f} s")


if __name__ == "__main__":
    main()
