"""Reading a journey file without trusting it: a regular file, of bounded size, never blocking.

A journey path comes from a user or from an `include` line, so it may name a
directory, a named pipe (reading would wait forever for a writer), a device
(`/dev/zero` never ends), a symlink loop, or a huge file. The file is examined
with `os.stat` before it is opened, opened with O_NONBLOCK (a pipe swapped in
after the check still cannot block), examined again on the open descriptor, and
read up to MAX_FILE_BYTES + 1 bytes at most.
"""

from __future__ import annotations

import errno
import os
import stat

from .errors import SourceError
from .limits import MAX_FILE_BYTES

__all__ = ["read_journey_file"]

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _not_regular(mode: int) -> str | None:
    """Why a file of this mode is refused, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    for test, kind in _KINDS:
        if test(mode):
            return f"it is {kind}, not a regular file"
    return "it is not a regular file"


def _os_reason(err: OSError) -> str:
    if err.errno == errno.ELOOP:
        return "a loop of symbolic links"
    return err.strerror or str(err)


def _too_large(size: int | None = None) -> str:
    got = f" ({size:,} bytes)" if size is not None else ""
    return f"the file is larger than {MAX_FILE_BYTES // 2**20} MiB{got}, the largest journey file read"


def read_journey_file(path: str | os.PathLike, keep_newlines: bool = False) -> str:
    """The file's text (UTF-8, BOM dropped); SourceError with a plain reason if it cannot be read.

    Newlines are translated to `\\n` unless `keep_newlines` (the formatter wants
    the bytes as stored, so a CRLF file counts as changed).
    """
    name = os.fspath(path)
    try:
        info = os.stat(name)
    except OSError as err:
        raise SourceError(name, _os_reason(err)) from None
    except ValueError as err:  # a NUL in the path
        raise SourceError(name, str(err)) from None
    why = _not_regular(info.st_mode)
    if why is not None:
        raise SourceError(name, why)
    if info.st_size > MAX_FILE_BYTES:
        raise SourceError(name, _too_large(info.st_size))
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(name, flags)
    except OSError as err:
        raise SourceError(name, _os_reason(err)) from None
    try:
        why = _not_regular(os.fstat(fd).st_mode)  # the path may name another file by now
        if why is not None:
            raise SourceError(name, why)
        chunks, left = [], MAX_FILE_BYTES + 1
        while left > 0:
            chunk = os.read(fd, min(left, 65536))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as err:
        raise SourceError(name, _os_reason(err)) from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > MAX_FILE_BYTES:  # it grew after the check
        raise SourceError(name, _too_large())
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SourceError(name, "not UTF-8 text") from None
    if not keep_newlines:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text
