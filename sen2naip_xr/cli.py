"""The ``sen2naip-xr`` command line: one sub-command per job, each registered by its stage's module.

Each stage module that offers a command exposes ``register(subparsers)``, which adds its parser and
sets ``func`` (called with the parsed namespace, returning an exit code).

Everything the command line prints about a failure (its own errors, argument errors, the traceback of
an unexpected exception) goes through :func:`sen2naip_xr._safe.redact`: signed URLs and account keys
never reach the terminal or a job log.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from sen2naip_xr._safe import redact
from sen2naip_xr.errors import Sen2NaipError

#: Modules whose ``register(subparsers)`` adds a sub-command, in the order ``--help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "sen2naip_xr.demo",
    "sen2naip_xr.catalog._cli",
    "sen2naip_xr.pipeline._cli",
    "sen2naip_xr.store._cli",
    "sen2naip_xr.fit._cli",
    "sen2naip_xr.validate._cli",
)


class _Parser(argparse.ArgumentParser):
    """``argparse`` whose error messages (they quote the offending value) are redacted."""

    def error(self, message: str) -> NoReturn:
        super().error(redact(message))


def build_parser() -> argparse.ArgumentParser:
    from sen2naip_xr import __version__

    parser = _Parser(
        prog="sen2naip-xr",
        description="Build SEN2NAIP-style Sentinel-2 super-resolution datasets with xarray/Dask.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from sen2naip_xr.catalog._cli import bbox_argv

    parser = build_parser()
    args = parser.parse_args(bbox_argv(list(sys.argv[1:] if argv is None else argv)))
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except Sen2NaipError as exc:
        print(redact(f"sen2naip-xr {args.command}: error: {exc}"), file=sys.stderr)
        return 2
    except Exception:  # a bug or an unexpected library error: its traceback, redacted
        print(redact(traceback.format_exc()), file=sys.stderr, end="")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
