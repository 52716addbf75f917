"""The installed ``faerec`` command: the library's commands (faerec.cli) plus pipeline, serve and stop,
which need Prefect and so live here, above the library (docs/ARCHITECTURE.md)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from faerec import cli

FLOW_COMMANDS = ("flows.commands",)


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main(argv, extra_modules=FLOW_COMMANDS)


if __name__ == "__main__":
    sys.exit(main())
