"""What is wrong with a path given as an input file, in the words an error message needs.

Why not ``Path.is_file()`` alone: it is False for a folder and a named pipe too, and a message saying
"does not exist" about a folder that does sends the user looking for the wrong mistake.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["file_problem"]

_KINDS = (
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def file_problem(path: str | os.PathLike[str]) -> str | None:
    """None if ``path`` is a regular file (or cannot be looked at: opening it then names the reason);
    else ``"does not exist"``, ``"is a directory, not a file"`` or ``"is not a regular file (a named
    pipe)"`` (socket, device), to follow the path in a message."""
    try:
        mode = Path(path).stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return "does not exist"
    except OSError:
        return None
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a directory, not a file"
    kind = next((name for test, name in _KINDS if test(mode)), "a special file")
    return f"is not a regular file ({kind})"
