"""Secrets for the library from Prefect Secret blocks (the library itself never imports Prefect).

``prefect_secret`` is handed to faerec.text.embed.embed_dataset as its ``secret_lookup``; the value is read
inside the task, when a request is about to be sent, so it never becomes a task parameter, a log line or an
artifact.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def prefect_secret(name: str) -> str | None:
    """The value of the Prefect Secret block ``name``, or None when the API or the block is unavailable."""
    try:
        from prefect.blocks.system import Secret

        value = Secret.load(name).get()
    except Exception as exc:  # no server, no block, or no permission: the caller says what is missing
        log.info("no Prefect Secret block %r (%s)", name, type(exc).__name__)
        return None
    return str(value) if value else None
