"""The `tapescope` command line (also `python main.py`)."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the `tapescope` command."""
    parser = argparse.ArgumentParser(
        prog="tapescope", description="A visual debugger for dynamic computational graphs."
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; with no arguments open the app on its built-in demo."""
    args = build_parser().parse_args(argv)
    if args.version:
        from importlib.metadata import version

        print(f"tapescope {version('tapescope')}")
        return 0
    from app.window import run_app

    return run_app()


if __name__ == "__main__":
    sys.exit(main())
