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


def cli(main: Callable[..., T]) -> Callable[..., T]:
    """Wrap a command's `main` so user errors and Ctrl-C end with one line, not a traceback."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(2) from None
        except KeyboardInterrupt:
            print("interrupted: nothing was finished; rerun with --resume to continue", file=sys.stderr)
            raise SystemExit(130) from None

    return wrapper
