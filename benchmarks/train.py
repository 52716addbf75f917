"""Seconds per training epoch and per full evaluation, SASRec base and SASRec+FAERec, on Amazon Beauty.

    python benchmarks/train.py [--dataset ../shared/datasets/amazon-beauty-2014 | --prepared DIR]
                               [--epochs 2] [--configs sasrec:base,sasrec:faerec] [--device auto]
                               [--cache-dir DIR] [--no-embed] [--bf16] [--similarity fp32,auto]

Settings of the issue: batch 256, max length 50, hidden 128 (ModelConfig defaults otherwise); --configs takes any
registered backbone:method. The raw dataset is
prepared with `faerec prepare` into a temp folder (or --prepared is used as is). FAERec reads the default MiniLM
embeddings; if the folder has none, they are computed with `faerec embed` (offline encoder) unless --no-embed,
in which case a random unit-norm 384-d table stands in and the output says so. Each configuration trains
``--epochs`` epochs with the real trainer loop (pre-tensorised batches, vectorised negatives, Adam) and runs
one full validation pass over every evaluable user, with the trainer's heap set-up (faerec.memory: fixed malloc
thresholds, a trim check between epochs). A method with an alignment loss runs once per --similarity precision
(operands of its similarity matmul; "auto" resolves per machine, faerec.device), and the first one is the reference
of the "x ref" ratios. Every configuration also prints its last epoch's time as a ratio to its first (the
"creep" of long runs; use --epochs 40 for the issue's figure). Prints one line per measurement (wall and process CPU
seconds) and a JSON summary last, with the machine's load average: the 2-core workspace is shared, so wall
times depend on it; CPU seconds / 2 roughly estimates the wall time on an idle 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing
from faerec.openmp import choose_wait_policy  # noqa: E402 - must run before torch is imported

choose_wait_policy()  # as `faerec train` does: OpenMP's default, PASSIVE on a busy machine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=str(ROOT.parent / "shared" / "datasets" / "amazon-beauty-2014"))
    parser.add_argument("--prepared", help="an already prepared dataset folder (skips `faerec prepare`)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--configs", default="sasrec:base,sasrec:faerec", help="backbone:method,...")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--cache-dir", help="embedding cache for `faerec embed` (default: a temp folder)")
    parser.add_argument("--no-embed", action="store_true", help="random 384-d table if no embeddings exist")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast in training")
    parser.add_argument("--eval-batch-size", type=int, default=512)
    parser.add_argument("--similarity", default="fp32,auto",
                        help="similarity matmul precisions to compare for methods with an alignment loss")
    args = parser.parse_args()

    import torch

    from faerec.data.dataset import Dataset
    from faerec.device import describe, resolve_device, resolve_similarity_precision
    from faerec.errors import FaerecError
    from faerec.eval.evaluator import Evaluator
    from faerec.memory import HeapGuard, configure_heap, peak_resident_mb, reset_peak_resident
    from faerec.models import ModelConfig, build_model
    from faerec.models.registry import method_spec
    from faerec.runs.config import TrainConfig
    from faerec.train.loop import train_epoch
    from faerec.train.negatives import NegativeSampler
    from faerec.train.run import make_optimizer, seed_everything
    from faerec.train.sequences import TrainingExamples

    configure_heap()
    tmp = tempfile.TemporaryDirectory(prefix="faerec-bench-train-")
    if args.prepared:
        data_dir = Path(args.prepared)
    else:
        from faerec.data.prepare import prepare

        data_dir = Path(tmp.name) / "data"
        started = time.perf_counter()
        prepare(args.dataset, data_dir, progress=False)
        print(f"prepared {args.dataset} in {time.perf_counter() - started:.1f} s", flush=True)
    dataset = Dataset.load(data_dir)
    device = resolve_device(args.device)
    precisions = args.similarity.split(",")
    configs = []
    for backbone, method in (tuple(c.split(":")) for c in args.configs.split(",")):
        # only FAERec's InfoNCE asks for the similarity precision; other methods run once
        configs += [(backbone, method, p) for p in (precisions if method == "faerec" else ["fp32"])]

    llm_table, pca_init, embeddings = None, None, "not needed"
    if any(method_spec(method).needs_text for _, method, _ in configs):
        llm_table, pca_init, embeddings = _embeddings(data_dir, args, Path(tmp.name), FaerecError)

    examples = TrainingExamples.build(dataset, 50)
    evaluator = Evaluator(dataset, 50, args.eval_batch_size, device)
    evaluator.split("valid")
    results = []
    reference: dict[tuple[str, str], float] = {}
    for backbone, method, precision in configs:
        similarity, reason = resolve_similarity_precision(precision, device)
        label = f"{backbone}+{method}" + (f" similarity {precision}->{similarity}" if method == "faerec" else "")
        reset_peak_resident()  # peak since this configuration began; the heap of earlier ones stays, so an upper bound
        seed_everything(2024)
        cfg = ModelConfig(backbone=backbone, method=method, hidden=128, max_len=50)
        text = method_spec(method).needs_text
        model = build_model(cfg, dataset.n_items, llm_table if text else None, pca_init if text else None,
                            torch.from_numpy(dataset.train_count), dataset=dataset).to(device)
        optimizer = make_optimizer(model, TrainConfig())  # the trainer's Adam (foreach), lr 1e-3
        sampler = NegativeSampler(dataset, torch.Generator().manual_seed(2024))
        epoch_seconds, epoch_cpu = [], []
        guard = HeapGuard()
        for epoch in range(args.epochs):
            started, cpu = time.perf_counter(), time.process_time()
            parts = train_epoch(model, optimizer, examples, sampler, epoch=epoch, batch_size=256, device=device,
                                bf16=args.bf16, bf16_similarity=similarity == "bf16", progress=False)
            if device.type == "cuda":
                torch.cuda.synchronize()
            epoch_seconds.append(time.perf_counter() - started)
            epoch_cpu.append(time.process_time() - cpu)
            guard.check()
            print(f"{label} epoch {epoch + 1}: {epoch_seconds[-1]:.2f} s wall, {epoch_cpu[-1]:.2f} s CPU "
                  f"(loss {parts['loss']:.4f}, load avg {os.getloadavg()[0]:.1f})", flush=True)
        per_epoch = sum(epoch_seconds) / len(epoch_seconds)
        ref = reference.setdefault((backbone, method), per_epoch)
        print(f"{label}: {per_epoch:.2f} s/epoch = {ref / per_epoch:.2f}x the speed of the first precision; "
              f"epoch {len(epoch_seconds)} / epoch 1 = {epoch_seconds[-1] / epoch_seconds[0]:.2f}"
              + (f"; epoch {len(epoch_seconds)} / epoch 2 = {epoch_seconds[-1] / epoch_seconds[1]:.2f}"
                 if len(epoch_seconds) > 2 else "") + (f" ({reason})" if method == "faerec" else ""), flush=True)
        started, cpu = time.perf_counter(), time.process_time()
        valid = evaluator.evaluate(model, "valid")
        eval_seconds, eval_cpu = time.perf_counter() - started, time.process_time() - cpu
        print(f"{label} full evaluation ({len(evaluator.split('valid'))} users x {dataset.n_items} "
              f"items): {eval_seconds:.2f} s wall, {eval_cpu:.2f} s CPU "
              f"(valid NDCG@10 {valid['overall']['ndcg@10']:.4f})", flush=True)
        results.append({
            "backbone": backbone, "method": method, "similarity": similarity, "epoch_seconds": [round(s, 2) for s in epoch_seconds],
            "seconds_per_epoch": round(per_epoch, 2), "speed_vs_first_precision": round(ref / per_epoch, 3),
            "last_over_first_epoch": round(epoch_seconds[-1] / epoch_seconds[0], 3),
            "cpu_seconds_per_epoch": round(sum(epoch_cpu) / len(epoch_cpu), 2),
            "eval_seconds": round(eval_seconds, 2), "eval_cpu_seconds": round(eval_cpu, 2),
            "batches_per_epoch": -(-len(examples) // 256), "valid_ndcg@10": valid["overall"]["ndcg@10"],
            "peak_rss_mb": round(peak_resident_mb() or 0.0, 1),
        })
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({
        "dataset": dataset.name, "users": dataset.n_users, "items": dataset.n_items, "embeddings": embeddings,
        "device": describe(device), "torch_threads": torch.get_num_threads(), "bf16": args.bf16,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "load_avg_1min": round(os.getloadavg()[0], 2), "peak_rss_mb": round(peak, 1), "results": results,
    }))


def _embeddings(data_dir: Path, args, tmp: Path, FaerecError):
    """(llm_table, pca_init, label): the folder's MiniLM embeddings, computed if needed, or a labelled stand-in."""
    import numpy as np
    import torch

    from faerec.data.folder import read_stats
    from faerec.text.store import load_embeddings, load_pca

    try:
        table, fp = load_embeddings(data_dir, "minilm")
        pca = load_pca(data_dir, 128, "minilm")
        label = f"minilm ({fp})"
    except FaerecError:
        if args.no_embed:
            rng = np.random.default_rng(2024)
            table = rng.normal(size=(read_stats(data_dir)["items"] + 1, 384))
            table = (table / np.linalg.norm(table, axis=1, keepdims=True)).astype(np.float32)
            table[0] = 0
            print("NOTE: no MiniLM embeddings; a random unit-norm 384-d table stands in", flush=True)
            return torch.from_numpy(table), None, "random 384-d stand-in (NOT MiniLM)"
        from faerec.text.embed import embed_dataset

        started = time.perf_counter()
        embed_dataset(data_dir, "minilm", pca_dim=128, cache_dir=Path(args.cache_dir or tmp / "cache"),
                      progress=False)
        print(f"embedded the catalogue with MiniLM in {time.perf_counter() - started:.1f} s", flush=True)
        table, fp = load_embeddings(data_dir, "minilm")
        pca = load_pca(data_dir, 128, "minilm")
        label = f"minilm ({fp})"
    return torch.from_numpy(table), torch.from_numpy(pca), label


if __name__ == "__main__":
    main()
