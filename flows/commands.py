"""``faerec pipeline`` (the main job), ``faerec serve`` and ``faerec stop`` (the local Prefect stack)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from faerec.defaults import PIPELINE_EPOCHS, SAMPLE_SOURCE
from faerec.errors import FaerecError
from flows.warm_start import EphemeralServer, import_stage_libraries


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "pipeline", help="prepare -> embed -> train -> evaluate, as the Prefect flow `faerec`",
        description="Run the `faerec` flow: prepare, embed, train every backbone x method, evaluate, and print "
        "the metrics table. With no SOURCE: the bundled sample (data/sample), the offline MiniLM encoder, "
        f"SASRec, base and FAERec, at most {PIPELINE_EPOCHS} epochs with early stopping (patience 10), a budget "
        "chosen to keep the main job within 10 minutes on 2 CPU cores (raise it with --epochs; a longer run "
        "resumes the shorter one's checkpoints). Without PREFECT_API_URL it runs in Prefect's ephemeral mode (no server); "
        "with it (e.g. after `faerec serve`) the run and its artifacts appear in the UI. Finished stages are "
        "cached, so a repeated run only redoes what changed.")
    p.add_argument("sources", nargs="*", metavar="SOURCE", help="registered sources or catalogue folders")
    p.add_argument("--encoder", default="minilm", help="minilm | openai:<model> | st:<path-or-name> | hf:<path>")
    p.add_argument("--backbone", nargs="+", dest="backbones", default=["sasrec"], metavar="NAME",
                   help="registered backbones (`faerec models` lists them; default sasrec)")
    p.add_argument("--method", nargs="+", dest="methods", default=["base", "faerec"], metavar="NAME",
                   help="registered methods (`faerec models`; default base faerec); text methods are embedded first")
    p.add_argument("--epochs", type=int, default=PIPELINE_EPOCHS, help="upper bound (default %(default)s)")
    p.add_argument("--patience", type=int, default=10)
    p.add_argument("--seed", type=int, default=2024)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--min-user-interactions", type=int, default=5)
    p.add_argument("--min-item-interactions", type=int, default=5)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--protocol", choices=["novel", "repeat"], default="novel",
                   help="history mask of every ranking (default novel; docs/PROTOCOL.md)")
    p.add_argument("--train-on", choices=["local", "gpu-pool"], default="local",
                   help="gpu-pool: hand training to the `faerec-train/train` deployment (needs a server)")
    p.add_argument("--parallel", type=int, default=0, metavar="N",
                   help="local runs trained at once, each in its own process on its share of the cores (default "
                   "0: as many as the runs, cores and memory allow; 1: one after another on every core)")
    p.set_defaults(func=run_pipeline)

    s = subparsers.add_parser(
        "serve", help="start a local Prefect server, work pools, deployments and a worker",
        description="Start `prefect server start` on 127.0.0.1, create the `faerec-process` and `gpu` process "
        "work pools, deploy prefect.yaml and start a worker, then set PREFECT_API_URL in the active Prefect "
        "profile, so `prefect deployment run faerec/full-pipeline` works right away. Logs and pids: "
        ".prefect/stack/. Stop everything with `faerec stop`.")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=4200)
    s.add_argument("--gpu-worker", action="store_true", help="also run a worker for the gpu pool on this machine")
    s.add_argument("--no-deploy", action="store_true", help="do not run `prefect deploy --all`")
    s.add_argument("--no-profile", action="store_true", help="leave the Prefect profile's PREFECT_API_URL alone")
    s.set_defaults(func=run_serve)

    t = subparsers.add_parser("stop", help="stop the workers and the server `faerec serve` started")
    t.set_defaults(func=run_stop)


# Prefect's temporary server gives up after 20 s by default; a busy 2-core machine can need more.
EPHEMERAL_STARTUP_SECONDS = 180


def run_pipeline(args: argparse.Namespace) -> dict[str, Any]:
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", str(EPHEMERAL_STARTUP_SECONDS))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # offline by default; the user may opt in
    from prefect.settings import (
        PREFECT_SERVER_ANALYTICS_ENABLED,
        PREFECT_SERVER_EPHEMERAL_ENABLED,
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
        temporary_settings,
    )
    from pydantic import ValidationError

    from faerec.report import metrics_table_text
    from flows.params import PipelineParams

    try:
        params = PipelineParams(
            datasets=args.sources or [SAMPLE_SOURCE], encoder=args.encoder, backbones=args.backbones,
            methods=args.methods, epochs=args.epochs, patience=args.patience, seed=args.seed, hidden=args.hidden,
            min_user_interactions=args.min_user_interactions, min_item_interactions=args.min_item_interactions,
            device=args.device, train_on=args.train_on, eval_protocol=args.protocol,
            training_processes=args.parallel)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise FaerecError(f"invalid pipeline settings: {problems}") from None
    api_url = _api_url()
    if api_url:
        from flows.stack import healthy

        if not healthy(api_url):
            raise FaerecError(f"PREFECT_API_URL={api_url} does not answer; start it with `faerec serve`, or unset "
                              "it (`prefect config unset PREFECT_API_URL`) to run in ephemeral mode")
    elif params.train_on == "gpu-pool":
        raise FaerecError("--train-on gpu-pool needs a Prefect server with the `train` deployment: `faerec serve`")
    print(f"faerec pipeline: Prefect {'server ' + api_url if api_url else 'ephemeral mode (no server)'}",
          file=sys.stderr)

    started = time.perf_counter()
    timeout = max(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value(), EPHEMERAL_STARTUP_SECONDS)
    analytics = os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"].strip().lower() in ("1", "true", "yes")
    with temporary_settings({PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: timeout,
                             PREFECT_SERVER_ANALYTICS_ENABLED: analytics}):
        # The temporary server boots in its own process while this one imports the pipeline (torch, the
        # models, the encoder library): on 2 cores the two overlap instead of following each other.
        with EphemeralServer(enabled=not api_url and PREFECT_SERVER_EPHEMERAL_ENABLED.value(), timeout=timeout):
            from faerec.models import text_methods
            from flows.pipeline import faerec_pipeline

            import_stage_libraries(params.encoder, needs_text=bool(set(text_methods()) & set(params.methods)))
        outcome = faerec_pipeline(config=params)
    runs = outcome["runs"]
    print()
    print(metrics_table_text(runs))
    for name, path in outcome.get("report_files", {}).items():
        print(f"{name}: {path}")
    return {
        "runs": len(runs),
        "seconds": round(time.perf_counter() - started, 1),
        "results": [{"run": str(r["run_dir"]).rsplit("/", 1)[-1],
                     "ndcg@10": r["test"]["overall"]["ndcg@10"], "tail_ndcg@10": r["test"]["tail"]["ndcg@10"]}
                    for r in runs],
        "report": outcome.get("report_files", {}).get("report"),
    }


def run_serve(args: argparse.Namespace) -> dict[str, Any]:
    from flows.stack import GPU_POOL, PIPELINE_POOL, StackConfig, up

    workers = (PIPELINE_POOL, GPU_POOL) if args.gpu_worker else (PIPELINE_POOL,)
    summary = up(StackConfig(host=args.host, port=args.port, workers=workers, deploy=not args.no_deploy,
                             set_profile=not args.no_profile))
    print(f"Prefect UI: {summary['ui']}   (logs in {summary['logs']})", file=sys.stderr)
    if not summary["profile_api_url_set"]:
        print(f"In another shell: export PREFECT_API_URL={summary['api_url']}", file=sys.stderr)
    print("Run the pipeline: prefect deployment run faerec/full-pipeline    Stop: faerec stop", file=sys.stderr)
    return summary


def run_stop(args: argparse.Namespace) -> dict[str, Any]:
    from flows.stack import StackConfig, down

    return down(StackConfig())


def _api_url() -> str | None:
    from prefect.settings import PREFECT_API_URL

    value = PREFECT_API_URL.value()
    return str(value) if value else None
