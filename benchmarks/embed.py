"""Items per second of `faerec embed` (default encoder) next to bare SentenceTransformer.encode, same prompts.

    python benchmarks/embed.py [--dataset ../shared/datasets/amazon-beauty-2014] [--precisions fp32,bf16]
                               [--limit N] [--slices 4] [--batch-size 32]

The dataset is prepared once with `faerec prepare` into a temp folder, cut to --limit items and into
--slices contiguous item ranges (each a valid dataset folder). For each precision and slice, bare encoding and
`embed_dataset` (fresh cache; model load, prompts, cache parts, output table and PCA included) run back to back
in this one process, alternating which goes first, so both see the same machine load even when other jobs
come and go. Times are summed over the slices (together: every item once); wall and CPU seconds are both
reported. Then all the items are embedded from a cache holding the slices' parts (outputs and PCA written),
and a re-run of that is timed in-process and as a `faerec embed` subprocess (interpreter start included).
Prints one line per measurement and a JSON summary last.
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from faerec.data import folder

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing


def _slice_dataset(dataset: Path, out: Path, first: int, last: int) -> Path:
    """Items first..last of a prepared dataset as a dataset folder of its own (item_idx renumbered 1..m)."""
    import polars as pl

    items = pl.read_parquet(dataset / folder.ITEMS).filter(pl.col("item_idx").is_between(first, last))
    items = items.sort("item_idx").with_columns((pl.col("item_idx") - first + 1).cast(pl.Int32))
    out.mkdir(parents=True)
    items.write_parquet(out / folder.ITEMS)
    stats = json.loads((dataset / folder.STATS).read_text())
    (out / folder.STATS).write_text(json.dumps({**stats, "items": items.height}))
    return out


def _timed(fn) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def _bare(model, prompts: list[str], precision: str, batch_size: int) -> None:
    import torch

    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        model.encode(prompts, batch_size=batch_size, convert_to_numpy=True)


def _faerec(folder: Path, cache: Path, precision: str, domain: str, batch_size: int, expected: int) -> None:
    from faerec.text.embed import embed_dataset

    summary = embed_dataset(folder, "minilm", cache_dir=cache, precision=precision, domain=domain,
                            batch_size=batch_size, pca_dim=min(128, expected), progress=False)
    assert summary["embedded"] == expected, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=str(ROOT.parent / "shared" / "datasets" / "amazon-beauty-2014"))
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--limit", type=int, default=None, help="only the first N items (by item_idx)")
    parser.add_argument("--slices", type=int, default=4, help="item ranges measured back to back (see above)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--domain", default="beauty item")
    args = parser.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer

    from faerec.data.prepare import prepare
    from faerec.text.embed import embed_dataset
    from faerec.text.encoders.sentence import minilm_path
    from faerec.text.items import read_items
    from faerec.text.prompts import render_prompts

    work = Path(tempfile.mkdtemp(prefix="faerec-embed-bench-"))
    dataset = Path(prepare(args.dataset, work / "dataset", progress=False)["path"])
    n_all = read_items(dataset).n_items
    n = min(args.limit or n_all, n_all)
    bounds = [round(i * n / args.slices) for i in range(args.slices + 1)]
    slices = []
    for i in range(args.slices):
        folder = _slice_dataset(dataset, work / f"slice-{i}", bounds[i] + 1, bounds[i + 1])
        catalogue = read_items(folder, args.domain)
        slices.append((folder, render_prompts(catalogue.items, catalogue.domain)))
    print(f"{n} items in {args.slices} slices, torch threads {torch.get_num_threads()}", flush=True)

    model = SentenceTransformer(str(minilm_path()), device="cpu")
    results: dict = {"items": n, "slices": args.slices, "batch_size": args.batch_size,
                     "torch_threads": torch.get_num_threads()}
    for precision in args.precisions.split(","):
        totals = {"bare_wall": 0.0, "bare_cpu": 0.0, "faerec_wall": 0.0, "faerec_cpu": 0.0}
        for i, (folder, prompts) in enumerate(slices):

            bare = functools.partial(_bare, model, prompts, precision, args.batch_size)
            faerec = functools.partial(_faerec, folder, work / f"cache-{precision}-{i}", precision, args.domain,
                                       args.batch_size, len(prompts))
            runs = [("bare", bare), ("faerec", faerec)]
            for name, fn in runs if i % 2 == 0 else runs[::-1]:
                wall, cpu = _timed(fn)
                totals[f"{name}_wall"] += wall
                totals[f"{name}_cpu"] += cpu
                print(f"{precision} slice {i} ({len(prompts)} items): {name} {wall:.1f}s wall, {cpu:.1f}s CPU "
                      f"= {len(prompts) / wall:.1f} items/s", flush=True)
        entry = {
            "bare_items_per_s": round(n / totals["bare_wall"], 2),
            "faerec_items_per_s": round(n / totals["faerec_wall"], 2),
            "ratio_wall": round(totals["bare_wall"] / totals["faerec_wall"], 3),
            "ratio_cpu": round(totals["bare_cpu"] / totals["faerec_cpu"], 3),
        }
        results[precision] = entry
        print(f"{precision}: bare {entry['bare_items_per_s']} items/s, faerec {entry['faerec_items_per_s']} items/s, "
              f"faerec/bare speed {entry['ratio_wall']} (wall), {entry['ratio_cpu']} (CPU)", flush=True)

    # Cached re-run of all n items: one folder holding them, and one cache holding the slices' parts.
    whole = _slice_dataset(dataset, work / "whole", 1, n)
    cache = work / "cache-whole"
    first_precision = args.precisions.split(",")[0]
    for part in sorted(work.glob(f"cache-{first_precision}-*/*/part-*.parquet")):
        (cache / part.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy2(part, cache / part.parent.name / part.name)
    runs = []
    for _ in range(2):  # all hits, outputs and PCA written; then a true re-run (nothing changed)
        t = time.perf_counter()
        again = embed_dataset(whole, "minilm", cache_dir=cache, precision=first_precision, domain=args.domain,
                              progress=False)
        runs.append(round(time.perf_counter() - t, 3))
        assert again["embedded"] == 0 and again["items"] == n, again
    results["all_cached_new_outputs_s"], results["cached_rerun_in_process_s"] = runs
    cmd = [sys.executable, "-m", "faerec.cli", "embed", str(whole), "--cache-dir", str(cache),
           "--precision", first_precision, "--domain", args.domain, "--no-progress"]
    t = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    results["cached_rerun_cli_s"] = round(time.perf_counter() - t, 3)
    assert json.loads(out.strip().splitlines()[-1])["embedded"] == 0
    print(f"{n} items all in the cache: {runs[0]}s writing outputs and PCA; re-run {runs[1]}s in process, "
          f"{results['cached_rerun_cli_s']}s as a `faerec embed` subprocess", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
