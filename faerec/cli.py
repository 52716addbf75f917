"""The library's commands (docs/CONTRACT.md): prepare, embed, cache, train, evaluate.

Each stage registers its own sub-command from the module that owns it, so this file stays a dispatcher. The
installed ``faerec`` command is flows.cli, which adds the Prefect commands (pipeline, serve, stop) on top, so
the library itself never imports Prefect.
A sub-command's handler returns a dict; it is printed as the one-line JSON summary that ends standard output.
Errors the user can fix (FaerecError) print one clear line on standard error and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence

from faerec.errors import FaerecError

# Modules that define ``register(subparsers)``; each handler is set with ``set_defaults(func=...)``.
COMMAND_MODULES = (
    "faerec.data.commands",
    "faerec.text.commands",
    "faerec.models_command",
    "faerec.train.commands",
    "faerec.eval.commands",
    "faerec.experiment.commands",
    "faerec.serve.commands",
)


def build_parser(extra_modules: Sequence[str] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="faerec", description="Tail-aware sequential recommenders (FAERec).")
    parser.add_argument("--version", action="version", version=_version())
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in (*COMMAND_MODULES, *extra_modules):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a stage that is not installed in this build
            if exc.name != name:
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None, extra_modules: Sequence[str] = ()) -> int:
    if argv is None:  # the real command line (not a test calling main([...])): faerec.allocator says why
        from faerec.allocator import reexec_under_allocator

        reexec_under_allocator()
    parser = build_parser(extra_modules)
    args = parser.parse_args(argv)
    try:
        summary = args.func(args)
    except FaerecError as exc:
        print(f"faerec {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"faerec {args.command}: interrupted", file=sys.stderr)
        return 130
    if summary is not None:
        print(json.dumps(summary, default=str))
    return 0


def _version() -> str:
    from faerec import __version__

    return f"faerec {__version__}"


if __name__ == "__main__":
    sys.exit(main())
