"""Errors a user can cause.

The CLI prints any :class:`GitneticError` as a single line (``gitnetic <cmd>: error: ...``) and exits
with status 2, so bad input never produces a traceback. Anything else is a bug and keeps its traceback.
Messages should say what was wrong *and* how to fix it.
"""

import errno
import os


class GitneticError(Exception):
    """Base class of every error caused by user input or the user's environment."""


class ConfigError(GitneticError):
    """A flag, params file or model config is missing, unknown or does not parse."""


class DataError(GitneticError):
    """Input data (corpus, tokenizer, shards) is missing, empty or corrupt."""


class CorpusError(DataError):
    """The corpus source yields no usable documents or cannot be read."""


class ShardError(DataError):
    """A ``PREFIX.bin``/``PREFIX.idx`` pair is missing, truncated or inconsistent."""


class TaskError(ConfigError):
    """An unknown task name or a task that cannot be imported/set up."""


class DiskFullError(GitneticError, OSError):
    """An output could not be written for lack of space (or quota); the outputs of earlier runs are intact
    because every writer goes through a temporary (``gitnetic.common.io``), removed on the way out.

    Also an ``OSError`` (``errno``, ``strerror``, ``filename`` set), so code that handles a failed write as
    an ``OSError`` (training's checkpoint writer) still does; its message is the one line the CLI prints.
    """

    def __init__(self, path: object, reason: str = "no space left on device") -> None:
        message = f"{reason} writing {path}; free space and rerun"
        super().__init__(message)
        self.message, self.path = message, path
        self.errno = errno.EDQUOT if reason.startswith("disk quota") else errno.ENOSPC
        self.strerror, self.filename = os.strerror(self.errno), str(path)

    def __str__(self) -> str:
        return self.message
