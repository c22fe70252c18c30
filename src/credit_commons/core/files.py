"""Files: writing secret files safely, and the errors a path can cause.

An ``OSError`` is translated where a path enters (:func:`path_error`) into one of the
project's errors, so an operator sees one line with a stable code and exit code instead of
a traceback: a missing path is ``file.not_found`` (exit 4), a path of the wrong kind
(a directory for a file, a file for a directory) ``file.invalid`` (exit 3), a denied one
``file.permission_denied`` (exit 6), any other failure (a full disk, an I/O error)
``file.io_failed`` (exit 9).
"""

from __future__ import annotations

import errno
import os
import secrets
from pathlib import Path

from credit_commons.core.errors import (
    CommonsError,
    ForbiddenError,
    NotFoundError,
    UnavailableError,
    ValidationError,
)

__all__ = [
    "PathInvalid",
    "PathNotFound",
    "PathNotPermitted",
    "PathUnavailable",
    "create_private",
    "path_error",
    "write_private",
]


class PathNotFound(NotFoundError):
    """A path (or its parent directory) does not exist."""

    code = "file.not_found"


class PathInvalid(ValidationError):
    """A path names the wrong kind of thing: a directory where a file is needed, or a file
    where a directory is."""

    code = "file.invalid"


class PathNotPermitted(ForbiddenError):
    """The operating system refuses to read or write a path (permissions, a read-only
    file system)."""

    code = "file.permission_denied"


class PathUnavailable(UnavailableError):
    """Reading or writing a path failed for another reason: a full disk, an I/O error."""

    code = "file.io_failed"


_REASONS = {
    errno.ENOENT: (PathNotFound, "it does not exist"),
    errno.EISDIR: (PathInvalid, "it is a directory"),
    errno.ENOTDIR: (PathInvalid, "a part of it is not a directory"),
    errno.EEXIST: (PathInvalid, "it exists and is not a directory"),
    errno.ENAMETOOLONG: (PathInvalid, "the name is too long"),
    errno.ELOOP: (PathInvalid, "it has too many symbolic links"),
    errno.EACCES: (PathNotPermitted, "permission denied"),
    errno.EPERM: (PathNotPermitted, "operation not permitted"),
    errno.EROFS: (PathNotPermitted, "the file system is read-only"),
    errno.ENOSPC: (PathUnavailable, "no space left on the device"),
    errno.EDQUOT: (PathUnavailable, "the disk quota is exhausted"),
}


def path_error(error: OSError, action: str = "use") -> CommonsError:
    """The project's error for ``error`` raised while trying to ``action`` a path.

    Returns (does not raise) a :class:`PathNotFound`, :class:`PathInvalid`,
    :class:`PathNotPermitted` or :class:`PathUnavailable` naming the path and the reason;
    the caller raises it ``from error``.
    """
    kind, reason = _REASONS.get(
        error.errno or 0, (PathUnavailable, (error.strerror or "input/output error").lower())
    )
    where = f" {error.filename}" if error.filename is not None else ""
    return kind(f"cannot {action}{where}: {reason}", extra={"path": _text(error.filename)})


def _text(name: object) -> str | None:
    if name is None:
        return None
    if isinstance(name, bytes):
        return os.fsdecode(name)
    return str(name)


def _write_temp(path: Path, data: bytes) -> Path:
    # A new 0600 file beside ``path``, written and flushed to disk; removed on error.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _sync_directory(directory: Path) -> None:
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def create_private(path: Path, data: bytes) -> None:
    """Create ``path`` with ``data`` and mode 0600, never replacing an existing file: a
    temp file beside it, fsync, then a hard link to ``path`` (which fails, atomically, if
    ``path`` exists), fsync of the directory.  A crash leaves no file or the whole one.

    Raises ``FileExistsError`` when ``path`` exists (and other ``OSError``s).
    """
    tmp = _write_temp(path, data)
    try:
        os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _sync_directory(path.parent)


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically with mode 0600: a temp file beside it, fsync,
    rename over ``path``, fsync of the directory.  A crash leaves the old file or the new
    one, never a torn one, and no temp file on error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
