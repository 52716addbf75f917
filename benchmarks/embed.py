"""Items per second of `faerec embed` (default encoder) next to bare SentenceTransformer.encode, same prompts.

    python benchmarks/embed.py [--dataset ../shared/datasets/amazon-beauty-2014] [--precisions fp32,bf16]
                               [--limit N] [--rounds 1] [--batch-size 32]

The dataset is prepared once with `faerec prepare` into a temp folder. For each precision, bare encoding and
`embed_dataset` (fresh cache each time; model load, prompts, cache parts, output table and PCA included) run
alternately in this one process, so both see the same machine load. Then a cached re-run is timed in-process
and as a `faerec embed` subprocess (interpreter start included). Prints one line per measurement and a JSON
summary last.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=str(ROOT.parent / "shared" / "datasets" / "amazon-beauty-2014"))
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--limit", type=int, default=None, help="embed only the first N items (by item_idx)")
    parser.add_argument("--rounds", type=int, default=1, help="alternating bare/faerec pairs per precision")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--domain", default="beauty item")
    args = parser.parse_args()

    import polars as pl
    import torch
    from sentence_transformers import SentenceTransformer

    from faerec.data.prepare import prepare
    from faerec.text.embed import embed_dataset
    from faerec.text.encoders.sentence import minilm_path
    from faerec.text.items import read_items
    from faerec.text.prompts import render_prompts

    work = Path(tempfile.mkdtemp(prefix="faerec-embed-bench-"))
    dataset = Path(prepare(args.dataset, work / "dataset", progress=False)["path"])
    if args.limit:  # keep the first N items; the folder stays a valid dataset for embedding
        items = pl.read_parquet(dataset / "items.parquet").filter(pl.col("item_idx") <= args.limit)
        items.write_parquet(dataset / "items.parquet")
        stats = json.loads((dataset / "stats.json").read_text())
        stats["items"] = items.height
        (dataset / "stats.json").write_text(json.dumps(stats))
    catalogue = read_items(dataset, args.domain)
    prompts = render_prompts(catalogue.items, catalogue.domain)
    n = len(prompts)
    print(f"{n} items, {len(set(prompts))} distinct prompts, torch threads {torch.get_num_threads()}", flush=True)

    model = SentenceTransformer(str(minilm_path()), device="cpu")
    results: dict = {"items": n, "batch_size": args.batch_size, "torch_threads": torch.get_num_threads()}
    cache = None
    for precision in args.precisions.split(","):
        bare_rates, faerec_rates = [], []
        for round_ in range(args.rounds):
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                t = time.perf_counter()
                model.encode(prompts, batch_size=args.batch_size, convert_to_numpy=True)
                bare = time.perf_counter() - t
            bare_rates.append(n / bare)
            print(f"{precision} round {round_}: bare encode {bare:.1f}s = {n / bare:.1f} items/s", flush=True)
            cache = work / f"cache-{precision}-{round_}"
            t = time.perf_counter()
            summary = embed_dataset(dataset, "minilm", cache_dir=cache, precision=precision, domain=args.domain,
                                    batch_size=args.batch_size, progress=False)
            total = time.perf_counter() - t
            assert summary["embedded"] == n, summary
            faerec_rates.append(n / total)
            print(f"{precision} round {round_}: faerec embed {total:.1f}s = {n / total:.1f} items/s "
                  f"(incl. model load, outputs, PCA)", flush=True)
        bare_rate, faerec_rate = statistics.median(bare_rates), statistics.median(faerec_rates)
        results[precision] = {"bare_items_per_s": round(bare_rate, 2), "faerec_items_per_s": round(faerec_rate, 2),
                              "ratio": round(faerec_rate / bare_rate, 3)}
        print(f"{precision}: faerec / bare = {faerec_rate / bare_rate:.3f}", flush=True)

    t = time.perf_counter()
    again = embed_dataset(dataset, "minilm", cache_dir=cache, precision=precision, domain=args.domain,
                          progress=False)
    results["cached_rerun_in_process_s"] = round(time.perf_counter() - t, 3)
    assert again["embedded"] == 0, again
    cmd = [sys.executable, "-m", "faerec.cli", "embed", str(dataset), "--cache-dir", str(cache),
           "--precision", precision, "--domain", args.domain, "--no-progress"]
    t = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    results["cached_rerun_cli_s"] = round(time.perf_counter() - t, 3)
    assert json.loads(out.strip().splitlines()[-1])["embedded"] == 0
    print(f"cached re-run: {results['cached_rerun_in_process_s']}s in process, "
          f"{results['cached_rerun_cli_s']}s as a `faerec embed` subprocess", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
