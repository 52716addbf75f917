"""``faerec experiment SPEC [--dataset SOURCE] [--out NAME] [--parallel N]`` (docs/CONTRACT.md)."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "experiment", help="the paper's tables and figures from a spec: a grid of runs over seeds, with tests",
        description="Prepare every dataset of the spec, embed it when a row reads text, train every run of the "
        "grid (datasets x backbones x rows x sweep points x seeds; a finished run is skipped, an unfinished one "
        "resumes), then aggregate the runs' per-user results into mean ± std tables with Impr. rows and paired "
        "significance tests, and draw the figures. Run folders: $FAEREC_RUNS_DIR/<run-id>-e<epochs>p<patience>; "
        "the report: $FAEREC_RUNS_DIR/<name>/report/.")
    p.add_argument("spec", metavar="SPEC", help="a TOML spec file, or a preset: ablations, backbones, comparison, seeds, sweeps")
    p.add_argument("--dataset", action="append", metavar="SOURCE", dest="datasets",
                   help="replaces the spec's datasets (repeatable): a source or a catalogue / prepared folder")
    p.add_argument("--out", metavar="NAME", help="experiment name, i.e. the folder runs/NAME/ (default: the "
                   "spec's name, else its file name)")
    p.add_argument("--parallel", type=int, default=0, metavar="N",
                   help="runs trained at once, each in its own process on its share of the cores (default 0: as "
                   "many as the runs, cores and memory allow on a CPU machine; one at a time on a GPU)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> dict[str, Any]:
    from faerec.errors import FaerecError
    from faerec.experiment import runner, spec
    from faerec.openmp import choose_wait_policy

    choose_wait_policy()
    experiment = spec.load(args.spec, datasets=args.datasets, name=args.out)
    if args.parallel < 0:
        raise FaerecError(f"--parallel must be >= 0 (0 = automatic), got {args.parallel}")
    outcome = runner.run(experiment, progress=not args.no_progress, parallel=args.parallel)
    report = outcome["report"]
    print()
    print(report.terminal_table())
    print(f"report: {report.markdown_path}")
    return outcome["summary"]
