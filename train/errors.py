"""One clear sentence instead of a traceback.

Problems a user can fix (a missing file, an unknown column, a wrong token) are raised as
`UserError` anywhere in the code; `cli` turns them into `error: ...` on stderr and exit status 2,
the convention of argparse and most Unix tools for usage errors.
"""

from __future__ import annotations

import functools
import sys
from typing import Callable, TypeVar

T = TypeVar("T")


class UserError(Exception):
    """An input problem with a message that says what is wrong and what to do."""


def cli(main: Callable[..., T] | None = None, *, resumable: bool = False):
    """Wrap a command's `main` so user errors and Ctrl-C end with one line, not a traceback.

    Use as `@cli`, or `@cli(resumable=True)` for a command with --resume, whose Ctrl-C line says so;
    other commands only have "run it again" to offer.
    """
    hint = "rerun with --resume to continue" if resumable else "run the command again to redo it"

    def wrap(main: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(main)
        def wrapper(*args, **kwargs):
            try:
                return main(*args, **kwargs)
            except UserError as err:
                print(f"error: {err}", file=sys.stderr)
                raise SystemExit(2) from None
            except KeyboardInterrupt:
                print(f"interrupted: nothing was finished; {hint}", file=sys.stderr)
                raise SystemExit(130) from None

        return wrapper

    return wrap(main) if main is not None else wrap
