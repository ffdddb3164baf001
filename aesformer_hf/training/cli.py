"""`aesformer-hf train` and `aesformer-hf demo`: defined in `aesformer_hf.commands.train` (no torch import needed to
build the parser); re-exported here."""

from __future__ import annotations

from ..commands.train import add_parsers, run_train

__all__ = ["add_parsers", "run_train"]
