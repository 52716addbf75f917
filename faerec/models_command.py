"""`faerec models`: the registered backbones and methods with their options (from the registries).

A top-level module, not faerec/models/commands.py: importing the faerec.models package loads torch, and the
CLI builds its parser before any handler sets the OpenMP wait policy (faerec.openmp)."""

from __future__ import annotations

import argparse
import dataclasses


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("models", help="list the registered backbones and methods and their options",
                              description="Every backbone and method in faerec/models/{backbones,methods}/, with "
                              "its options and defaults (set them with `faerec train --set NAME=VALUE`).")
    p.set_defaults(func=_run)


def catalogue() -> dict:
    from faerec.models.registry import BACKBONES, METHODS, backbone_names, method_names

    backbone_names(), method_names()  # load both registries
    return {
        "backbones": {n: {"summary": s.summary, "options": _defaults(s.options)} for n, s in BACKBONES.items()},
        "methods": {n: {"summary": s.summary, "needs_text": s.needs_text, "scores_new_items": s.scores_new_items,
                        "options": _defaults(s.options)} for n, s in METHODS.items()},
    }


def _defaults(options: type) -> dict:
    return {f.name: f.default for f in dataclasses.fields(options)}


def _run(args: argparse.Namespace) -> dict:
    found = catalogue()
    for kind in ("backbones", "methods"):
        print(f"{kind}:")
        for name, entry in found[kind].items():
            extra = " [reads text embeddings]" if entry.get("needs_text") else ""
            print(f"  {name:<12} {entry['summary']}{extra}")
            for option, default in entry["options"].items():
                print(f"      --set {option}={default}")
    return {"backbones": list(found["backbones"]), "methods": list(found["methods"])}
