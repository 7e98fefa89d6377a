"""How the command line ends: 0 on success, 2 with one clear message on a user error, 1 with the traceback on a bug.

A *user error* is something the user can fix without reading our code: a config check's ``ValueError`` raised by this
package (``data.lookback must be >= 1, got 0``), a file that is missing or unwritable (``OSError`` with a file name, a
full disk), a checkpoint that does not fit the config, or Lightning's ``MisconfigurationException``. Its one message
goes to stderr (rank 0 only under DDP) and the exit status is 2, as jsonargparse's for a bad command line. Anything
else (a ``ValueError`` from inside torch, a ``TypeError``) is a bug: its traceback is kept and the exit status is 1.
``LIGHTNING_LSTM_TRACEBACK=1`` shows the traceback of a user error too.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from lightning.fabric.utilities.rank_zero import _get_rank
from lightning.pytorch.utilities.exceptions import MisconfigurationException

TRACEBACK_VARIABLE = "LIGHTNING_LSTM_TRACEBACK"
USER_ERROR_EXIT = 2
PACKAGE = Path(__file__).resolve().parents[1]  # lightning_lstm/


def show_traceback() -> bool:
    """Whether ``LIGHTNING_LSTM_TRACEBACK`` asks for full tracebacks (any value but empty, 0, false, no)."""
    return os.environ.get(TRACEBACK_VARIABLE, "").strip().lower() not in ("", "0", "false", "no")


def raised_in_package(tb: TracebackType | None) -> bool:
    """Whether the innermost frame of ``tb`` (where the ``raise`` ran) is in this package's code."""
    last = None
    while tb is not None:
        last, tb = tb, tb.tb_next
    if last is None:
        return False
    return Path(last.tb_frame.f_code.co_filename).resolve().is_relative_to(PACKAGE)


def is_user_error(err: BaseException) -> bool:
    """A message for the user (see the module docstring), not a bug of this package or of a library."""
    if isinstance(err, MisconfigurationException):
        return True
    if isinstance(err, OSError):  # a missing file, a permission, a full disk: about the user's files, not the code
        return err.filename is not None or raised_in_package(err.__traceback__)
    return isinstance(err, (ValueError, RuntimeError)) and raised_in_package(err.__traceback__)


def is_rank_zero() -> bool:
    """Rank 0, or a single process (before or without DDP): the one process that prints."""
    rank = _get_rank()
    return rank is None or rank == 0


def user_message(err: BaseException) -> str:
    """The error's own message; an ``OSError`` without one names its file and reason."""
    if isinstance(err, OSError) and err.filename is not None and (not err.args or isinstance(err.args[0], int)):
        return f"{err.filename}: {err.strerror or type(err).__name__}"
    return str(err).strip() or type(err).__name__


def report_user_error(err: BaseException, prog: str) -> int:
    """Print ``err`` as one message (rank 0 only) and return the exit status of a user error."""
    if is_rank_zero():
        print(
            f"{prog}: error: {user_message(err)}\n(set {TRACEBACK_VARIABLE}=1 to see the full traceback)",
            file=sys.stderr,
        )
    return USER_ERROR_EXIT


def print_user_traceback(err: BaseException) -> None:
    if is_rank_zero():
        traceback.print_exception(err)


def program_name() -> str:
    """``lightning-lstm`` for the console script, else ``python -m lightning_lstm``."""
    return "lightning-lstm" if Path(sys.argv[0]).name == "lightning-lstm" else "python -m lightning_lstm"


def exit_status(build: Callable[[list[str] | None], object], args: list[str] | None = None) -> int:
    """Run ``build(args)``; 0 on success, :data:`USER_ERROR_EXIT` after one message on a user error; bugs raise.

    ``SystemExit`` (jsonargparse's 2 on a bad command line, 143 on SIGTERM) and ``KeyboardInterrupt`` pass through.
    """
    try:
        build(args)
    except Exception as err:
        if not is_user_error(err):
            raise
        if show_traceback():
            print_user_traceback(err)
        return report_user_error(err, program_name())
    return 0
