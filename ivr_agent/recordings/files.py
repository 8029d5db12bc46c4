"""The recordings folder, the only code that touches it. Blocking: call through a thread.

Every access takes a bare file name that `parse_file_name` accepts (one path component, no
dots in front, a known extension) and opens it relative to the root's directory descriptor with
O_NOFOLLOW: a name cannot reach outside the root, and neither can a symlink planted inside it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ivr_agent.domain.recordings import FORMATS, Measured, file_name, parse_file_name
from ivr_agent.errors import RecordingNotFound
from ivr_agent.recordings.audio import HEAD_BYTES, TAIL_BYTES, AudioError, audio_info

_CHUNK: Final = 1 << 20
_OPEN_FLAGS: Final = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True, slots=True)
class FileState:
    size: int
    mtime: float
    finalised: bool  # the writer closed it (see audio.py); False also when unreadable


class RecordingsRoot:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @contextlib.contextmanager
    def _dir(self) -> Iterator[int]:
        dfd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            yield dfd
        finally:
            os.close(dfd)

    def open(self, name: str) -> int:
        """A read-only descriptor of a regular file in the root. Raises RecordingNotFound."""
        if parse_file_name(name) is None:
            raise RecordingNotFound(f"not a recording file name: {name!r}")
        try:
            with self._dir() as dfd:
                fd = os.open(name, _OPEN_FLAGS, dir_fd=dfd)
        except OSError as err:
            raise RecordingNotFound(f"{name}: {err.strerror}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise RecordingNotFound(f"{name}: not a regular file")
        return fd

    def locate(self, call_id: str) -> tuple[str, str] | None:
        """(file name, format) of the call's recording, whichever known format it has. A file
        that exists but cannot be read is found here (and reported unreadable by measure())."""
        for fmt in FORMATS:
            name = file_name(call_id, fmt)
            if name is None:
                return None
            if self._lstat(name) is not None:
                return name, fmt
        return None

    def _lstat(self, name: str) -> os.stat_result | None:
        """The file's own metadata if it is a regular file in the root (never a link's target)."""
        if parse_file_name(name) is None:
            return None
        try:
            with self._dir() as dfd:
                st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        except OSError:
            return None
        return st if stat.S_ISREG(st.st_mode) else None

    def state(self, name: str) -> FileState | None:
        """Size, mtime and whether it is finalised, reading only its first and last bytes."""
        try:
            fd = self.open(name)
        except RecordingNotFound:
            st0 = self._lstat(name)
            return None if st0 is None else FileState(st0.st_size, st0.st_mtime, False)
        try:
            st = os.fstat(fd)
            info = _info(fd, name, st.st_size)
            return FileState(st.st_size, st.st_mtime, info is not None and info[1])
        finally:
            os.close(fd)

    def measure(self, name: str) -> Measured | None:
        """Size, SHA-256 and duration of the file (None if it is not there)."""
        try:
            fd = self.open(name)
        except RecordingNotFound as err:
            st = self._lstat(name)
            if st is None:
                return None
            # There, but not readable by the service (permissions): flagged, never "missing".
            return Measured(st.st_size, "", None, False, str(err))
        try:
            size = os.fstat(fd).st_size
            digest = _sha256(fd)
            try:
                info = _info(fd, name, size, strict=True)
            except AudioError as err:
                return Measured(size, digest, None, False, str(err))
            duration, finalised = info if info else (0.0, False)
            return Measured(size, digest, round(duration, 3), finalised)
        finally:
            os.close(fd)

    def sha256(self, name: str) -> str:
        fd = self.open(name)
        try:
            return _sha256(fd)
        finally:
            os.close(fd)

    def scan(self) -> dict[str, FileState]:
        """Every recording file in the root (regular files with a safe name), by name. The
        `finalised` field is not read here (False): call `state()` for the files that matter."""
        out: dict[str, FileState] = {}
        with os.scandir(self.root) as it:
            for entry in it:
                if parse_file_name(entry.name) is None:
                    continue
                with contextlib.suppress(OSError):
                    if entry.is_file(follow_symlinks=False):
                        st = entry.stat(follow_symlinks=False)
                        out[entry.name] = FileState(st.st_size, st.st_mtime, False)
        return out

    def unlink(self, name: str) -> bool:
        if parse_file_name(name) is None:
            return False
        try:
            with self._dir() as dfd:
                os.unlink(name, dir_fd=dfd)
        except FileNotFoundError:
            return False
        return True

    def exists(self) -> bool:
        return self.root.is_dir()


def _sha256(fd: int) -> str:
    h = hashlib.sha256()
    offset = 0
    while chunk := os.pread(fd, _CHUNK, offset):
        h.update(chunk)
        offset += len(chunk)
    return h.hexdigest()


def _info(fd: int, name: str, size: int, *, strict: bool = False) -> tuple[float, bool] | None:
    parsed = parse_file_name(name)
    fmt = parsed[1] if parsed else ""
    if size == 0:
        return (0.0, False) if strict else None
    head = os.pread(fd, HEAD_BYTES, 0)
    tail = os.pread(fd, TAIL_BYTES, max(0, size - TAIL_BYTES)) if fmt == "ogg" else b""
    try:
        info = audio_info(fmt, head, tail, size)
    except AudioError:
        if strict:
            raise
        return None
    return info.duration, info.finalised
