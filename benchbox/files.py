"""Checks on a path before it is opened: only a regular file is read (a FIFO, a device or a
socket would block the reader or feed it without end), and the OS's refusals become BadInput."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from benchbox.errors import BadInput

_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a folder"),
)


def file_kind(mode: int) -> str:
    """What a stat mode names, in words ('a FIFO (named pipe)'); 'a regular file' for one."""
    if stat.S_ISREG(mode):
        return "a regular file"
    return next((words for test, words in _KINDS if test(mode)), "not a regular file")


def require_regular_file(path: str | os.PathLike, what: str, hint: str | None = None) -> Path:
    """The path, when it names a regular file (links followed); else BadInput, without opening it.

    `what` names the file for the message ("model file", "report").
    """
    p = Path(path)
    try:
        mode = os.stat(p).st_mode
    except FileNotFoundError:
        raise BadInput(f"{what} {p} does not exist", hint) from None
    except OSError as exc:
        raise BadInput(f"cannot read {what} {p}: {os_reason(exc)}", hint) from None
    if not stat.S_ISREG(mode):
        raise BadInput(
            f"{what} {p} is {file_kind(mode)}, not a regular file",
            hint or "give the path of a regular file (copy the data into one first)",
        )
    return p


def os_reason(exc: OSError) -> str:
    """The OS's reason for a refusal in words ('file name too long')."""
    if exc.errno == errno.ENAMETOOLONG:
        return "the file name is too long"
    return (exc.strerror or str(exc)).lower() if exc.strerror else str(exc)
