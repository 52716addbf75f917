"""``faerec recommend``, ``faerec similar`` and ``faerec api`` (heavy imports happen inside the handlers)."""

from __future__ import annotations

import argparse


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    rec = subparsers.add_parser(
        "recommend", help="top-K items for every user of a run's dataset (or the given users) -> Parquet",
        description="Score every user's whole known history (train + valid + test items) with a finished run "
        "and write the top-K items per user (user_id, item_id, score, rank; original catalogue ids). The history "
        "is excluded as in evaluation (novel protocol) unless --include-history. Candidate-only items are "
        "recommended when the run's method can represent an item from its text.")
    rec.add_argument("run_dir", metavar="RUN")
    rec.add_argument("--k", "-k", type=_positive, default=10, help="items per user (10)")
    rec.add_argument("--out", required=True, metavar="FILE.parquet", help="output Parquet file")
    who = rec.add_mutually_exclusive_group()
    who.add_argument("--users", metavar="FILE", help="only these users: a text file (one user_id per line) or a "
                     "CSV/Parquet file with a user_id column")
    who.add_argument("--user", metavar="ID", help="only this user")
    rec.add_argument("--include-history", action="store_true",
                     help="allow items of the user's history (repeat protocol: only padding is excluded)")
    rec.add_argument("--batch-size", type=_positive, default=1024, help="users scored at once (1024)")
    rec.add_argument("--data", metavar="DIR", help="dataset folder, if it moved since training")
    rec.add_argument("--device", choices=("auto", "cpu", "cuda"), help="override the run's device")
    rec.add_argument("--no-progress", action="store_true", help="no progress bar")
    rec.set_defaults(func=_recommend)

    sim = subparsers.add_parser("similar", help="nearest items by cosine in a run's item table",
                                description="The items most cosine-similar to --item in the run's item table.")
    sim.add_argument("run_dir", metavar="RUN")
    sim.add_argument("--item", required=True, metavar="ID", help="an item_id of the catalogue")
    sim.add_argument("-k", "--k", type=_positive, default=10, help="how many (10)")
    sim.add_argument("--data", metavar="DIR", help="dataset folder, if it moved since training")
    sim.add_argument("--device", choices=("auto", "cpu", "cuda"), help="override the run's device")
    sim.set_defaults(func=_similar)

    api = subparsers.add_parser("api", help="HTTP API: /recommend, /similar, /health (FastAPI + uvicorn)",
                                description="Load RUN once and serve GET /recommend?user_id=&k=, POST /recommend "
                                "{history, k}, GET /similar?item_id=&k= and GET /health until interrupted.")
    api.add_argument("run_dir", metavar="RUN")
    api.add_argument("--host", default="127.0.0.1", help="interface to listen on (127.0.0.1: loopback only)")
    api.add_argument("--port", type=int, default=8000, help="port (8000)")
    api.add_argument("--data", metavar="DIR", help="dataset folder, if it moved since training")
    api.add_argument("--device", choices=("auto", "cpu", "cuda"), help="override the run's device")
    api.add_argument("--threads", type=_positive, default=1,
                     help="torch threads per request (1: one user's scoring is too small to share, and a second "
                     "thread waiting for a busy core makes it several times slower)")
    api.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    api.set_defaults(func=_api)


def _recommend(args: argparse.Namespace) -> dict:
    from faerec.openmp import choose_wait_policy

    choose_wait_policy()
    from faerec.serve.recommend import export_recommendations, read_user_file

    users = read_user_file(args.users) if args.users else ([args.user] if args.user is not None else None)
    return export_recommendations(args.run_dir, args.out, args.k, users=users, include_history=args.include_history,
                                  batch_size=args.batch_size, dataset_dir=args.data, device=args.device,
                                  progress=not args.no_progress)


def _similar(args: argparse.Namespace) -> dict:
    from faerec.openmp import choose_wait_policy

    choose_wait_policy()
    from faerec.serve.similar import similar_items

    return similar_items(args.run_dir, args.item, args.k, dataset_dir=args.data, device=args.device)


def _api(args: argparse.Namespace) -> dict:
    from faerec.openmp import choose_wait_policy

    choose_wait_policy()
    import torch

    from faerec.serve.api import serve
    from faerec.serve.recommend import Recommender

    torch.set_num_threads(args.threads)
    rec = Recommender.load(args.run_dir, args.data, args.device)
    return serve(rec, args.host, args.port, args.log_level)
