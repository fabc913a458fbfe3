"""What the workbench's command lines share: user errors in one line, ``--debug``, one ``--smoke`` spelling.

Used by ``python -m workbench`` (:mod:`workbench.__main__`), ``python -m workbench.weights`` and the scripts in
``benchmarks/``. A *user error* is what the project's validation raises at its public boundary (see
:mod:`workbench.validation`, :mod:`workbench.inputs`, :mod:`workbench.batch`): a ``ValueError`` (a bad value, an
unknown name, an unreadable file) or an ``OSError`` (``FileNotFoundError``, ``FileExistsError``,
``NotADirectoryError``, ``PermissionError``, a refused connection: a path or a service that is not as expected)
or a :class:`~workbench.cache.CorruptCheckpointError` (a weights file that cannot be read: a file, not a bug).
It is reported as one line, ``PROG: error: MESSAGE``, on stderr with exit status 2, as argparse reports a bad
option (whose usage errors are one line too here). Anything else is taken for a bug and keeps Python's traceback
and exit status 1. ``--debug`` shows the traceback of a user error too (exit status 1).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from workbench.cache import CorruptCheckpointError

#: the exception types reported as a user's error (one line, exit status 2) rather than as a bug
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, CorruptCheckpointError)
#: exit status of a user error (argparse's for a bad option)
USER_ERROR_STATUS = 2


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line on stderr (exit status 2); ``--help`` has the usage.
    Its sub-command parsers are of the same class."""

    def error(self, message: str) -> NoReturn:
        self.exit(USER_ERROR_STATUS, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_debug(parser: argparse.ArgumentParser, top: bool = True) -> None:
    """``--debug``: show the traceback of a user error. Give it to the top parser and (``top=False``) to each
    sub-command, so that it may come before or after the sub-command's name."""
    parser.add_argument("--debug", action="store_true", default=False if top else argparse.SUPPRESS,
                        help="show the Python traceback of an error instead of one line")


def add_smoke(parser: argparse.ArgumentParser, help: str, aliases: Sequence[str] = ()) -> None:
    """The one spelling of a script's smoke setting, ``--smoke`` (``args.smoke``); ``aliases`` are older spellings
    still accepted (documents or callers use them) but left out of ``--help``."""
    parser.add_argument("--smoke", action="store_true", help=help)
    for alias in aliases:
        parser.add_argument(alias, dest="smoke", action="store_true", help=argparse.SUPPRESS)


def one_line(error: BaseException) -> str:
    """The error's message on one line (its type's name when it has none)."""
    text = " ".join(str(error).split())
    return text or type(error).__name__


def run_command(prog: str, command: Callable[[], int | None], debug: bool = False) -> int:
    """``command()``'s exit status (None: 0); a user error (:data:`USER_ERRORS`) becomes one line on stderr and exit
    status 2 unless ``debug``, which lets it propagate with its traceback."""
    try:
        return int(command() or 0)
    except USER_ERRORS as error:
        if debug:
            raise
        print(f"{prog}: error: {one_line(error)}", file=sys.stderr, flush=True)
        return USER_ERROR_STATUS


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, got {value}")
    return value
