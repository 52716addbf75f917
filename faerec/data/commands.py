"""``faerec prepare``."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("prepare", help="download/read a source, k-core filter, split, write a dataset")
    p.add_argument("source", help="registered source (e.g. amazon2014:Beauty) or a local catalogue folder")
    p.add_argument("--out", help="output folder (default: data/processed/<dataset-id>)")
    p.add_argument("--min-user-interactions", type=int, default=5)
    p.add_argument("--min-item-interactions", type=int, default=5)
    p.add_argument("--raw-dir", help="where downloads go (default: data/raw/<source>)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> dict:
    from faerec.data.prepare import prepare

    return prepare(args.source, args.out, min_user=args.min_user_interactions,
                   min_item=args.min_item_interactions, raw_dir=args.raw_dir, progress=not args.quiet)
