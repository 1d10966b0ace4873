"""Argument types and options shared by the commands (``training``, ``.cv``, ``.report``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number >= ``minimum``, with a clear message otherwise."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


#: A whole number >= 1 (iterations, seeds, threads).
positive_int = int_at_least(1)


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    """``--threads N`` (default 1): torch intra-op threads for the fits."""
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=1,
        help="torch intra-op threads; 1 (the default) is fastest for these tiny models "
        "on a shared machine",
    )
