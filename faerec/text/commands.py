"""``faerec embed`` and ``faerec cache {compact,stats}`` (heavy imports happen inside the handlers)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from faerec.errors import FaerecError


def register(subparsers) -> None:
    embed = subparsers.add_parser(
        "embed",
        help="embed a processed dataset's items (content-addressed cache, PCA)",
        description="Embed the items of a processed dataset folder; only prompts missing from the cache are encoded.",
    )
    embed.add_argument("dir", type=Path, help="processed dataset folder (data/processed/<id>)")
    embed.add_argument(
        "--encoder", default="minilm",
        help="minilm | st:<name-or-path> | openai[:<model>] | hf:<path>, options as ?key=value&... (default minilm)",
    )
    embed.add_argument("--pca-dim", type=int, default=128, help="PCA dimension for the ID init; 0 skips (128)")
    embed.add_argument("--pca-seed", type=int, default=None, help="PCA random state (2024)")
    embed.add_argument("--cache-dir", type=Path, default=None, help="default: $FAEREC_CACHE_DIR, else ./embeddings_cache")
    embed.add_argument("--batch-size", type=int, default=None, help="inputs per forward pass / API request")
    embed.add_argument("--precision", choices=("auto", "fp32", "bf16"), default=None,
                       help="local encoders: auto (default: bf16 where the device runs it natively, i.e. CUDA with "
                            "native bf16 or a CPU with avx512_bf16/amx_bf16, else fp32), fp32 or bf16")
    template = embed.add_mutually_exclusive_group()
    template.add_argument("--template", default=None,
                          help="prompt template with {domain} {title} {brand} {price} {categories} {description}")
    template.add_argument("--template-file", type=Path, default=None, help="read the prompt template from a file")
    embed.add_argument("--field-chars", type=int, default=None, help="cut each field to this many characters (2000)")
    embed.add_argument("--domain", default=None, help="noun for an item in prompts (default: stats.json's domain)")
    embed.add_argument("--max-cost", type=float, default=None, help="refuse an API job estimated above this (USD)")
    embed.add_argument("--save-every", type=int, default=4096, help="write a cache part every N items (4096)")
    embed.add_argument("--no-progress", action="store_true", help="no progress bar")
    embed.set_defaults(func=run_embed)

    cache = subparsers.add_parser("cache", help="embedding cache upkeep", description="Embedding cache upkeep.")
    cache_sub = cache.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    for name, helptext, func in (
        ("compact", "merge each namespace's parts into one, dropping duplicate keys", run_compact),
        ("stats", "parts, vectors and bytes per encoder namespace", run_stats),
    ):
        action = cache_sub.add_parser(name, help=helptext, description=helptext)
        action.add_argument("--cache-dir", type=Path, default=None,
                            help="default: $FAEREC_CACHE_DIR, else ./embeddings_cache")
        action.set_defaults(func=func)


def _log_to_stderr() -> None:
    """Show the cost estimate, retries and fallbacks on the terminal unless logging is already set up."""
    logger = logging.getLogger("faerec")
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("faerec: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def run_embed(args: argparse.Namespace) -> dict:
    from faerec.text.embed import embed_dataset
    from faerec.text.pca import DEFAULT_PCA_SEED
    from faerec.text.prompts import DEFAULT_FIELD_CHARS

    _log_to_stderr()
    template = args.template
    if args.template_file is not None:
        try:
            template = args.template_file.read_text().strip("\n")
        except OSError as exc:
            raise FaerecError(f"cannot read template ({exc.strerror})", path=args.template_file) from None
    return embed_dataset(
        args.dir,
        args.encoder,
        pca_dim=args.pca_dim,
        cache_dir=args.cache_dir,
        batch_size=args.batch_size,
        precision=args.precision,
        template=template,
        max_cost=args.max_cost,
        progress=not args.no_progress,
        field_chars=args.field_chars or DEFAULT_FIELD_CHARS,
        domain=args.domain,
        pca_seed=DEFAULT_PCA_SEED if args.pca_seed is None else args.pca_seed,
        save_every=args.save_every,
    )


def _cache_root(args: argparse.Namespace) -> Path:
    from faerec.text.fingerprint import default_cache_dir

    return args.cache_dir if args.cache_dir is not None else default_cache_dir()


def run_compact(args: argparse.Namespace) -> dict:
    from faerec.text.maintenance import compact_cache

    return compact_cache(_cache_root(args))


def run_stats(args: argparse.Namespace) -> dict:
    from faerec.text.maintenance import cache_stats

    return cache_stats(_cache_root(args))
