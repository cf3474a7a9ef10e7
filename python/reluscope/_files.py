"""Atomic file writes: a file is either its previous version or the complete new one.

Every file reluscope writes (models, checkpoints, HTML reports, experiment JSON
and PNG) goes through ``atomic_write``: the content is written to a temporary
file in the destination's folder (so that the final rename stays on one file
system), flushed and fsynced, then renamed over the destination with
``os.replace``, which is atomic on POSIX and Windows. If anything goes wrong
before the rename, a Ctrl-C included, the temporary file is removed and the
previous file, if any, is untouched.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from typing import IO, Any


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb", *, encoding: str | None = None):
    """Open a temporary file for writing; on success it replaces ``path``.

    ``mode`` is "wb" or "w" (text, ``encoding`` defaulting to UTF-8). The
    destination's folder is created when missing. Yields the open file.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    path = os.fsdecode(os.fspath(path))
    if not path:
        raise ValueError("the path to write is empty")
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot write {path}: it is a folder")
    directory = os.path.dirname(os.path.abspath(path))
    _make_folder(directory, path)
    descriptor, temporary = _create_temporary(directory)
    try:
        stream: IO[Any]
        if mode == "w":
            stream = open(descriptor, "w", encoding=encoding or "utf-8", newline="")
        else:
            stream = open(descriptor, "wb")
        with stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        # BaseException: a KeyboardInterrupt must not leave the temporary behind either.
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def refuse_existing(paths, force: bool) -> None:
    """A ValueError naming the outputs that exist, unless ``force``: the commands run
    this before any work, so that nothing is overwritten without ``--force``.

    A folder in the way is left to the writer, whose error says so.
    """
    if force:
        return
    existing = [path for path in paths if os.path.lexists(path) and not os.path.isdir(path)]
    if len(existing) == 1:
        raise ValueError(f"{existing[0]} exists; pass --force to overwrite it")
    if existing:
        raise ValueError(f"{' and '.join(existing)} exist; pass --force to overwrite them")


def write_text(path, text: str) -> str:
    """Write ``text`` (UTF-8) to ``path`` atomically; return the path."""
    with atomic_write(path, "w") as stream:
        stream.write(text)
    return os.fspath(path)


def save_figure(figure, path, *, format: str = "png", **options) -> str:
    """Save a matplotlib figure to ``path`` atomically; return the path.

    The format is passed explicitly: matplotlib would otherwise guess it from
    the temporary file's name.
    """
    with atomic_write(path, "wb") as stream:
        figure.savefig(stream, format=format, **options)
    return os.fspath(path)


def _make_folder(directory: str, path: str) -> None:
    """Create the destination's folder, or say which part of the path is in the way."""
    try:
        os.makedirs(directory, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocking = directory
        while blocking and not os.path.exists(blocking):
            blocking = os.path.dirname(blocking)
        raise NotADirectoryError(f"cannot write {path}: {blocking} is a file, not a folder") \
            from None


def _create_temporary(directory: str) -> tuple[int, str]:
    """A new, empty hidden file beside the destination: (descriptor, path).

    Its name is short and unrelated to the destination's, so that any legal
    destination name works. Created with mode 0666 less the umask, as
    ``open(path, "w")`` would (``tempfile.mkstemp`` makes files only their
    owner can read).
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        temporary = os.path.join(directory, f".reluscope-{secrets.token_hex(6)}.tmp")
        try:
            return os.open(temporary, flags, 0o666), temporary
        except FileExistsError:
            continue
