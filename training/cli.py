"""Argument types and options shared by the commands (``training``, ``.cv``, ``.report``)."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1, with a clear message otherwise."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    """``--threads N`` (default 1): torch intra-op threads for the fits."""
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=1,
        help="torch intra-op threads; 1 (the default) is fastest for these tiny models "
        "on a shared machine",
    )
