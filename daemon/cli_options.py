"""Command-line options that ``render`` and ``serve`` share."""

from __future__ import annotations

import argparse

__all__ = ["add_model_options"]


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--device`` and ``--dtype``."""
    parser.add_argument(
        "--model",
        help="hub id (default ucsd-reach/musicldm), a local folder in the diffusers layout, "
        "or a built-in test model: tiny, full-random",
    )
    parser.add_argument("--device", help="cuda, cuda:N, mps or cpu (default: the best available)")
    parser.add_argument("--dtype", help="fp16, bf16 or fp32 (default: fp16 on CUDA, else fp32)")
