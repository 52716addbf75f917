"""`faerec evaluate RUN_DIR` (docs/CONTRACT.md)."""

from __future__ import annotations

import argparse
import time


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("evaluate", help="re-evaluate a trained run (full ranking) and rewrite metrics.json",
                              description="Load RUN_DIR/config.json and best.pt, rebuild dataset and model, "
                              "re-run validation and test evaluation, rewrite RUN_DIR/metrics.json.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--data", metavar="DIR", help="dataset folder, if it moved since training")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="override the run's device")
    p.add_argument("--protocol", choices=("novel", "repeat"),
                   help="evaluate under this history-mask protocol instead of the run's (docs/PROTOCOL.md)")
    p.add_argument("--out", metavar="FILE", help="write the metrics document here instead of RUN_DIR/metrics.json")
    p.add_argument("--new-items", action="store_true",
                   help="new-item protocol (faerec prepare --new-items): rank the held-out items for the test "
                   "users whose target is one, over trained + candidate items; prints the result (and writes it "
                   "to --out if given), metrics.json is left alone")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> dict:
    from faerec.openmp import choose_wait_policy
    from faerec.runs.folder import summary

    choose_wait_policy()
    if args.new_items:
        return _run_new_items(args)
    from faerec.eval.run import evaluate_run

    started = time.perf_counter()
    result = evaluate_run(args.run_dir, dataset_dir=args.data, device=args.device, protocol=args.protocol,
                          out=args.out)
    return summary(result, time.perf_counter() - started)


def _run_new_items(args: argparse.Namespace) -> dict:
    from faerec.eval.newitems import evaluate_new_items
    from faerec.io import write_json

    if args.protocol not in (None, "novel"):
        from faerec.errors import FaerecError

        raise FaerecError("--new-items ranks under the novel protocol only")
    result = evaluate_new_items(args.run_dir, dataset_dir=args.data, device=args.device)
    if args.out:
        write_json(args.out, result)
    return result
