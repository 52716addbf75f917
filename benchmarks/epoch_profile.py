"""Where a training epoch's time goes, and how far it is from this machine's compute floor.

    python benchmarks/epoch_profile.py --prepared DIR [--config sasrec:faerec] [--batches 30] [--warmup 10]
                                 [--similarity auto] [--top 20]

Trains ``--warmup`` batches, times ``--batches`` more and one whole epoch, then profiles ``--batches`` more of
the real trainer loop (faerec.train.loop: gather, negatives, forward, backward, Adam) under torch.profiler, and
prints:
- the ops with the most self CPU time, and the same grouped into kinds (matrix products, softmax/log-sum-exp,
  gathers and scatters, the optimizer, other element-wise work, Python and the rest);
- the floor: the profiled batches' matrix-product FLOPs (torch.profiler ``with_flops``) divided by the rate a
  plain ``torch.mm`` of the epoch's dominant shapes reaches in the same run, in the same thread count. That
  is what the epoch would take if every product ran at that rate and everything else were free: a lower
  bound, printed as a ratio to the measured batch time.
The batches are drawn from a seeded random sample of all users, and the negatives come from the trainer's
sampler, so the profiled batches are typical ones.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing
from faerec.openmp import choose_wait_policy  # noqa: E402 - must run before torch is imported

choose_wait_policy()

KINDS = (  # (kind, substrings of op names), first match wins
    ("matrix products", ("mm", "matmul", "linear", "bmm", "addmm", "baddbmm", "_scaled_dot")),
    ("softmax / log-sum-exp", ("softmax", "logsumexp", "log_softmax", "exp")),
    ("gathers / scatters", ("index", "gather", "scatter", "embedding", "nonzero", "masked", "where", "take")),
    ("optimizer (Adam)", ("_foreach", "adam")),
    ("norms", ("layer_norm", "norm")),
)


def kind_of(name: str) -> str:
    lowered = name.lower()
    for kind, keys in KINDS:
        if any(key in lowered for key in keys):
            return kind
    return "other element-wise and bookkeeping"


def matmul_rate(torch, shapes: list[tuple[int, int, int]], repeats: int = 20) -> float:
    """GFLOP/s of torch.mm over the given (m, k, n) shapes, fp32, in this process's thread count."""
    flops, seconds = 0.0, 0.0
    for m, k, n in shapes:
        a, b = torch.randn(m, k), torch.randn(k, n)
        torch.mm(a, b)  # warm-up
        started = time.perf_counter()
        for _ in range(repeats):
            torch.mm(a, b)
        seconds += time.perf_counter() - started
        flops += 2.0 * m * k * n * repeats
    return flops / seconds / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepared", required=True, help="a prepared dataset folder (with MiniLM embeddings for text methods)")
    parser.add_argument("--config", default="sasrec:faerec", help="backbone:method")
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--similarity", default="auto")
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()

    import torch
    from torch.profiler import ProfilerActivity, profile

    from faerec.data.dataset import Dataset
    from faerec.device import resolve_similarity_precision
    from faerec.memory import configure_heap
    from faerec.models import ModelConfig, build_model
    from faerec.models.registry import method_spec
    from faerec.runs.config import TrainConfig
    from faerec.text.store import load_embeddings, load_pca
    from faerec.train.loop import train_epoch
    from faerec.train.negatives import NegativeSampler
    from faerec.train.run import make_optimizer, seed_everything
    from faerec.train.sequences import TrainingExamples

    configure_heap()
    dataset = Dataset.load(Path(args.prepared))
    backbone, method = args.config.split(":")
    llm, pca = None, None
    if method_spec(method).needs_text:
        llm = torch.from_numpy(load_embeddings(Path(args.prepared), "minilm")[0])
        pca = torch.from_numpy(load_pca(Path(args.prepared), 128, "minilm"))
    seed_everything(2024)
    model = build_model(ModelConfig(backbone=backbone, method=method, hidden=128, max_len=50), dataset.n_items,
                        llm, pca, torch.from_numpy(dataset.train_count), dataset=dataset)
    optimizer = make_optimizer(model, TrainConfig())
    sampler = NegativeSampler(dataset, torch.Generator().manual_seed(2024))
    examples = TrainingExamples.build(dataset, 50)
    similarity, reason = resolve_similarity_precision(args.similarity, torch.device("cpu"))
    batch = 256

    # Users are numbered in the order the dataset lists them, and the first ones are not typical (on Beauty the
    # first 30 batches of users trained 17 % slower per batch than a whole epoch): each run draws its batches
    # from one seeded random sample of all the examples.
    order = torch.randperm(len(examples), generator=torch.Generator().manual_seed(7))

    def run(n_batches: int, epoch: int) -> float:  # the first n_batches * batch rows of ``order``
        rows = order[: n_batches * batch]
        subset = TrainingExamples(examples.users[rows], examples.inputs[rows], examples.targets[rows])
        started = time.perf_counter()
        train_epoch(model, optimizer, subset, sampler, epoch=epoch, batch_size=batch, device=torch.device("cpu"),
                    bf16_similarity=similarity == "bf16", progress=False)
        return time.perf_counter() - started

    run(args.warmup, epoch=1)
    unprofiled = run(args.batches, epoch=2) / args.batches
    epoch_batches = -(-len(examples) // batch)
    whole_epoch = run(epoch_batches, epoch=2)
    with profile(activities=[ProfilerActivity.CPU], with_flops=True, record_shapes=True) as prof:
        profiled = run(args.batches, epoch=2) / args.batches
    events = prof.key_averages()
    total_self = sum(e.self_cpu_time_total for e in events) / 1e6
    print(f"{args.config}, similarity {similarity} ({reason}), {torch.get_num_threads()} threads: "
          f"{unprofiled * 1e3:.1f} ms per batch unprofiled, {profiled * 1e3:.1f} ms profiled; a whole epoch of "
          f"{epoch_batches} batches {whole_epoch:.2f} s ({whole_epoch / epoch_batches * 1e3:.1f} ms per batch)")
    print(f"\ntop {args.top} ops by self CPU time (share of the profiled self time, {total_self:.2f} s):")
    for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[: args.top]:
        print(f"  {e.key:<44} {e.self_cpu_time_total / 1e6 / total_self:6.1%}  {e.count:6d} calls")
    kinds: dict[str, float] = defaultdict(float)
    for e in events:
        kinds[kind_of(e.key)] += e.self_cpu_time_total / 1e6
    print("\nby kind:")
    for kind, seconds in sorted(kinds.items(), key=lambda kv: -kv[1]):
        print(f"  {kind:<40} {seconds / total_self:6.1%}")

    flops = sum(e.flops for e in events if e.flops) / args.batches
    by_shape = sorted((e for e in prof.key_averages(group_by_input_shape=True) if e.flops),
                      key=lambda e: -e.flops)
    print("\nmatrix products with the most FLOPs (per batch; input shapes):")
    for e in by_shape[:8]:
        print(f"  {e.key:<12} {e.flops / args.batches / 1e9:6.2f} GFLOP  {e.cpu_time_total / 1e6 / args.batches * 1e3:7.1f} ms"
              f"  {e.count // args.batches:3d}x  {e.input_shapes}")
    tokens = int((examples.inputs[order[: args.batches * batch]] != 0).sum()) / args.batches  # the profiled rows
    shapes = [(int(tokens), 128, 128), (int(tokens), 128, 384), (2048, 128, 2048), (int(tokens), 128, 4096)]
    rate = matmul_rate(torch, shapes)
    floor = flops / (rate * 1e9)
    print(f"\nfloor: {flops / 1e9:.2f} GFLOP of matrix products per batch ({tokens:.0f} real tokens); torch.mm "
          f"reaches {rate:.1f} GFLOP/s here on shapes {shapes}: {floor * 1e3:.1f} ms per batch, "
          f"measured / floor = {unprofiled / floor:.2f}x")
    print(json.dumps({"config": args.config, "similarity": similarity, "threads": torch.get_num_threads(),
                      "ms_per_batch": round(unprofiled * 1e3, 2),
                      "epoch_seconds": round(whole_epoch, 3), "floor_ms_per_batch": round(floor * 1e3, 2),
                      "gflop_per_batch": round(flops / 1e9, 3), "mm_gflops": round(rate, 1),
                      "kinds": {k: round(v / total_self, 4) for k, v in kinds.items()}}))


if __name__ == "__main__":
    main()
