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
    p.add_argument("--candidates", choices=("new", "all", "none"), default="new",
                   help="candidate-only items appended to items.parquet (recommendable, never trained): new = "
                   "catalogue items with text that nobody interacted with (default), all = also those the k-core "
                   "removed, none = neither")
    p.add_argument("--new-items", type=float, default=0.0, metavar="SHARE",
                   help="new-item protocol: hold out this share of the k-core's items (their training and "
                   "validation interactions are removed, their test targets kept) as candidate items")
    p.add_argument("--new-items-seed", type=int, default=2024, metavar="N", help="seed of the hold-out draw (2024)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> dict:
    from faerec.data.prepare import prepare

    return prepare(args.source, args.out, min_user=args.min_user_interactions,
                   min_item=args.min_item_interactions, raw_dir=args.raw_dir, progress=not args.quiet,
                   candidates=args.candidates, new_items=args.new_items, new_items_seed=args.new_items_seed)
