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

#: the exception types reported as a user's error (one line, exit status 2) rather than as a bug; see
#: :func:`is_user_error` for the one more that is looked up only once it can have been raised
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError)
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


def is_user_error(error: BaseException) -> bool:
    """A :data:`USER_ERRORS` instance or a :class:`~workbench.cache.CorruptCheckpointError`. The cache module (and
    torch with it) is not imported for this: an error of it can only come once it has been imported, so ``--help``
    and usage errors stay free of torch's start-up."""
    cache = sys.modules.get("workbench.cache")
    return isinstance(error, USER_ERRORS) or (cache is not None and isinstance(error, cache.CorruptCheckpointError))


def run_command(prog: str, command: Callable[[], int | None], debug: bool = False) -> int:
    """``command()``'s exit status (None: 0); a user error (:func:`is_user_error`) becomes one line on stderr and exit
    status 2 unless ``debug``, which lets it propagate with its traceback."""
    try:
        return int(command() or 0)
    except Exception as error:
        if debug or not is_user_error(error):
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
