"""Items per second of `faerec embed` (default encoder) per precision, next to bare SentenceTransformer.encode.

    python benchmarks/embed.py [--dataset ../shared/datasets/amazon-beauty-2014] [--precisions fp32,bf16,auto]
                               [--backends torch,openvino] [--limit N] [--slices 4] [--batch-size 32]

The dataset is prepared once with `faerec prepare` into a temp folder, cut to --limit items and into
--slices contiguous item ranges (each a valid dataset folder). Configurations: a bare encoder loop
(SentenceTransformer.encode on the rendered prompts, no faerec cache or prompt code) for each concrete precision,
and `embed_dataset` (fresh cache; model load, prompts, cache parts, output table and PCA included) for each of
--precisions, where "auto" is faerec's default (precision not passed: bf16 where the CPU/GPU runs it natively,
see faerec.device). With the openvino package installed, `minilm?backend=openvino` at the auto precision
joins both sides (the bare loop is the same SentenceTransformer with faerec's OpenVINO twin swapped in). For each
slice every configuration runs back to back in this one process, the order
rotating from slice to slice, so all see the same machine load even when other jobs come and go. Times are
summed over the slices (together: every item once); wall and CPU seconds are both reported. Every
configuration is printed as items/s and as a ratio to the fastest bare configuration; the headline is
`faerec embed` at the default precision against that and against the fastest bare torch loop (goal: >= 0.9x).
Then all the items are embedded from a cache holding the slices' parts (outputs and PCA written), and a re-run
of that is timed in-process and as a `faerec embed` subprocess (interpreter start included).
A CPU benchmark (the bare loops run on the CPU): on a machine with CUDA run it with CUDA_VISIBLE_DEVICES= .
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
        model.encode(prompts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)


def _faerec(folder: Path, cache: Path, encoder: str, precision: str, domain: str, batch_size: int,
            expected: int) -> None:
    from faerec.text.embed import embed_dataset

    summary = embed_dataset(folder, encoder, cache_dir=cache, precision=None if precision == "auto" else precision,
                            domain=domain, batch_size=batch_size, pca_dim=min(128, expected), progress=False)
    assert summary["embedded"] == expected, summary


def _label(config: tuple[str, str, str], auto: str) -> str:
    kind, precision, backend = config
    default = f" (default -> {auto})" if kind == "faerec" and precision == "auto" else ""
    return f"{kind} {precision}{'' if backend == 'torch' else ' ' + backend}{default}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=str(ROOT.parent / "shared" / "datasets" / "amazon-beauty-2014"))
    parser.add_argument("--precisions", default="fp32,bf16,auto",
                        help="faerec configurations; auto = the default (no --precision)")
    parser.add_argument("--backends", default="torch,openvino",
                        help="openvino adds minilm?backend=openvino at the auto precision, bare and in faerec "
                             "(skipped when the openvino package is not installed)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N items (by item_idx)")
    parser.add_argument("--slices", type=int, default=4, help="item ranges measured back to back (see above)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--domain", default="beauty item")
    args = parser.parse_args()

    import importlib.util

    import torch
    from sentence_transformers import SentenceTransformer

    from faerec.data.prepare import prepare
    from faerec.device import bf16_support
    from faerec.text.encoders.sentence import minilm_path, use_openvino
    from faerec.text.items import read_items
    from faerec.text.prompts import render_prompts

    precisions = args.precisions.split(",")
    support = bf16_support("cpu")
    auto = "bf16" if support.native else "fp32"
    # Bare loops for every concrete precision asked for, and always the one "auto" resolves to.
    bare_precisions = sorted({auto if p == "auto" else p for p in precisions} | {auto}, key=("fp32", "bf16").index)
    configs = [("bare", p, "torch") for p in bare_precisions] + [("faerec", p, "torch") for p in precisions]
    openvino = "openvino" in args.backends.split(",")
    if openvino and importlib.util.find_spec("openvino") is None:
        print("openvino is not installed (pip install 'faerec[openvino]'): its configurations are skipped")
        openvino = False
    if openvino:
        configs[len(bare_precisions):len(bare_precisions)] = [("bare", auto, "openvino")]
        configs.append(("faerec", "auto", "openvino"))

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
    print(f"{n} items in {args.slices} slices, torch threads {torch.get_num_threads()}; "
          f"auto -> {auto} ({support.reason})", flush=True)

    models = {"torch": SentenceTransformer(str(minilm_path()), device="cpu", local_files_only=True)}
    if openvino:
        from faerec.text.fingerprint import FileDigests

        models["openvino"] = SentenceTransformer(str(minilm_path()), device="cpu", local_files_only=True)
        use_openvino(models["openvino"], FileDigests(None).folder(minilm_path()), auto)  # converted once, cached
    for backend, model in models.items():  # warm-up, so the first configuration is not penalised
        _bare(model, slices[0][1][:8], auto if backend == "openvino" else "fp32", args.batch_size)
    results: dict = {"items": n, "slices": args.slices, "batch_size": args.batch_size,
                     "torch_threads": torch.get_num_threads(), "auto": auto, "auto_reason": support.reason}
    totals = {config: {"wall": 0.0, "cpu": 0.0} for config in configs}
    for i, (folder, prompts) in enumerate(slices):
        runs = {}
        for config in configs:
            kind, precision, backend = config
            if kind == "bare":
                runs[config] = functools.partial(_bare, models[backend], prompts,
                                                 "fp32" if backend == "openvino" else precision, args.batch_size)
            else:
                encoder = "minilm" if backend == "torch" else f"minilm?backend={backend}"
                runs[config] = functools.partial(_faerec, folder, work / f"cache-{precision}-{backend}-{i}", encoder,
                                                 precision, args.domain, args.batch_size, len(prompts))
        shift = i % len(configs)
        for config in configs[shift:] + configs[:shift]:
            wall, cpu = _timed(runs[config])
            totals[config]["wall"] += wall
            totals[config]["cpu"] += cpu
            print(f"slice {i} ({len(prompts)} items): {_label(config, auto)} {wall:.1f}s wall, {cpu:.1f}s CPU "
                  f"= {len(prompts) / wall:.1f} items/s", flush=True)

    fastest = min((c for c in configs if c[0] == "bare"), key=lambda c: totals[c]["wall"])
    fastest_torch = min((c for c in configs if c[0] == "bare" and c[2] == "torch"), key=lambda c: totals[c]["wall"])
    best, best_torch = totals[fastest], totals[fastest_torch]
    print(f"\n{'configuration':<40}{'items/s':>9}{'vs fastest bare':>17}{'(CPU)':>8}{'vs bare torch':>15}")
    for config in configs:
        t = totals[config]
        entry = {"items_per_s": round(n / t["wall"], 2), "vs_fastest_bare": round(best["wall"] / t["wall"], 3),
                 "vs_fastest_bare_cpu": round(best["cpu"] / t["cpu"], 3),
                 "vs_fastest_bare_torch": round(best_torch["wall"] / t["wall"], 3),
                 "wall_s": round(t["wall"], 2), "cpu_s": round(t["cpu"], 2)}
        results["_".join(config)] = entry
        mark = "  <- fastest bare" if config == fastest else ""
        print(f"{_label(config, auto):<40}{entry['items_per_s']:>9.1f}{entry['vs_fastest_bare']:>16.3f}x"
              f"{entry['vs_fastest_bare_cpu']:>7.3f}x{entry['vs_fastest_bare_torch']:>14.3f}x{mark}", flush=True)
    default = ("faerec", "auto", "torch") if ("faerec", "auto", "torch") in totals else configs[len(bare_precisions)]
    headline = round(best["wall"] / totals[default]["wall"], 3)
    headline_torch = round(best_torch["wall"] / totals[default]["wall"], 3)
    results["fastest_bare"] = "_".join(fastest)
    results["faerec_default_vs_fastest_bare"] = headline
    results["faerec_default_vs_fastest_bare_torch"] = headline_torch
    print(f"faerec embed at the default precision ({_label(default, auto)}): {headline}x the fastest bare "
          f"configuration ({_label(fastest, auto)}), {headline_torch}x the fastest bare torch one "
          f"({_label(fastest_torch, auto)}); goal >= 0.9", flush=True)
    if openvino:
        ov_ratio = round(totals[("bare", auto, "openvino")]["wall"] / totals[("faerec", "auto", "openvino")]["wall"], 3)
        results["faerec_openvino_vs_bare_openvino"] = ov_ratio
        print(f"faerec embed with minilm?backend=openvino: {ov_ratio}x the bare OpenVINO loop", flush=True)

    # Cached re-run of all n items: one folder holding them, and one cache holding the slices' parts.
    whole = _slice_dataset(dataset, work / "whole", 1, n)
    cache = work / "cache-whole"
    first_precision = precisions[0]
    for part in sorted(work.glob(f"cache-{first_precision}-torch-*/*/part-*.parquet")):
        (cache / part.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy2(part, cache / part.parent.name / part.name)
    precision_arg = None if first_precision == "auto" else first_precision
    from faerec.text.embed import embed_dataset

    runs = []
    for _ in range(2):  # all hits, outputs and PCA written; then a true re-run (nothing changed)
        t = time.perf_counter()
        again = embed_dataset(whole, "minilm", cache_dir=cache, precision=precision_arg, domain=args.domain,
                              pca_dim=min(128, n), progress=False)
        runs.append(round(time.perf_counter() - t, 3))
        assert again["embedded"] == 0 and again["items"] == n, again
    results["all_cached_new_outputs_s"], results["cached_rerun_in_process_s"] = runs
    cmd = [sys.executable, "-m", "faerec.cli", "embed", str(whole), "--cache-dir", str(cache),
           "--domain", args.domain, "--pca-dim", str(min(128, n)), "--no-progress"]
    if precision_arg is not None:
        cmd += ["--precision", precision_arg]
    t = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    results["cached_rerun_cli_s"] = round(time.perf_counter() - t, 3)
    assert json.loads(out.strip().splitlines()[-1])["embedded"] == 0
    print(f"{n} items all in the cache: {runs[0]}s writing outputs and PCA; re-run {runs[1]}s in process, "
          f"{results['cached_rerun_cli_s']}s as a `faerec embed` subprocess", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
