"""Crash-safe checkpoint files: written beside their destination, fsynced, then renamed over the old file.

Lightning 2.6's ``TorchCheckpointIO`` writes through a temporary file in the system temp folder: on another filesystem
the final move is a copy, and a kill during it leaves a partial file under the final name. :class:`AtomicCheckpointIO`
writes ``<name>.writing-<random>.tmp`` in the destination folder, fsyncs it, ``os.replace`` s it over ``<name>`` and
fsyncs the folder: a kill at any moment leaves the old complete file or the new one. A failed write (disk full,
read-only folder) removes its temporary file and raises :class:`CheckpointWriteError`, which names the path and the
config key that sets it. A killed write's ``*.writing-*.tmp`` never ends in ``.ckpt``; :func:`remove_stale_temporaries`
deletes those whose writer is gone (the writer holds an exclusive ``flock`` on it, released when the process dies).

This module is a bottom layer: it imports only the standard library, torch and lightning.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch
from lightning.fabric.plugins.io.checkpoint_io import CheckpointIO
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.fabric.utilities.cloud_io import _is_local_file_protocol
from lightning.fabric.utilities.types import _PATH

try:
    import fcntl
except ImportError:  # Windows: no flock; temporary files are then ignored, never removed
    fcntl = None

log = logging.getLogger(__name__)
_UMASK = os.umask(0o022)  # read once at import (setting it back at once), not while other threads may create files
os.umask(_UMASK)

TEMP_MARK = ".writing-"
TEMP_SUFFIX = ".tmp"
DEFAULT_FOLDER_KEY = "checkpoint.dirpath (default: <trainer.logger.init_args.save_dir>/<name>/version_<n>/checkpoints)"
_REMEDIES = {errno.ENOSPC: "Free space there", errno.EDQUOT: "Free space there"}
_REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the folder is on a read-only filesystem",
    errno.EACCES: "there is no permission to write there",
    errno.EPERM: "there is no permission to write there",
    errno.ENOENT: "a folder on its path cannot be created",
    errno.ENOTDIR: "a file stands where a folder on its path should be",
}


class CheckpointWriteError(OSError):
    """A checkpoint (or other run file) could not be written (disk full, read-only or unwritable folder).

    ``str()`` is one message naming the path, the reason and the config key that sets the folder; ``errno`` is the
    operating system's error number, ``filename`` the file's final path.
    """

    def __init__(self, path: Path, cause: OSError, folder_key: str | None = None) -> None:
        reason = _REASONS.get(cause.errno, cause.strerror or str(cause))
        message = (
            f"cannot write {path}: {reason} ([Errno {cause.errno}] {cause.strerror}). {_what_is_kept(path)}. "
            f"{_REMEDIES.get(cause.errno, 'Make it writable')}, or set {folder_key or DEFAULT_FOLDER_KEY} to "
            "another folder."
        )
        super().__init__(message)  # one string: str() and the CLI's one-line report are this message alone
        self.errno, self.strerror, self.filename = cause.errno, cause.strerror, str(path)
        self.message = message

    def __str__(self) -> str:
        return self.message


def _what_is_kept(path: Path) -> str:
    """What a failed write of ``path`` left as it was: the checkpoints beside a checkpoint, else the old file."""
    folder = path.parent
    if path.suffix != ".ckpt":
        return f"{path} is unchanged" if path.exists() else f"{path} was not created"
    intact = sorted(p.name for p in folder.glob("*.ckpt")) if folder.is_dir() else []
    if intact:
        return f"The checkpoints in {folder} are complete and unchanged ({', '.join(intact)})"
    return f"{folder} holds no checkpoint yet"


class FolderNotWritableError(OSError):
    """A run or checkpoint folder cannot be created or written; ``str()`` names the folder, the reason and the key."""

    def __init__(self, folder: Path, cause: OSError, folder_key: str) -> None:
        reason = _REASONS.get(cause.errno, cause.strerror or str(cause))
        message = (
            f"cannot write to {folder}: {reason} ([Errno {cause.errno}] {cause.strerror}). "
            f"{_REMEDIES.get(cause.errno, 'Make it writable')}, or set {folder_key} to another folder."
        )
        super().__init__(message)
        self.errno, self.strerror, self.filename = cause.errno, cause.strerror, str(folder)
        self.message = message

    def __str__(self) -> str:
        return self.message


def check_writable(folder: _PATH, folder_key: str) -> None:
    """Create ``folder`` if needed and write a probe file in it, so a run stops before training, not at its end.

    Raises:
        FolderNotWritableError: naming ``folder`` and ``folder_key`` (read-only, no permission, disk full).
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise FolderNotWritableError(folder, err, folder_key) from None


def is_temporary(path: _PATH) -> bool:
    """Whether ``path`` is a temporary file of :func:`write_atomically` (complete or not, never a checkpoint)."""
    name = Path(path).name
    return TEMP_MARK in name and name.endswith(TEMP_SUFFIX)


def fsync_folder(folder: _PATH) -> None:
    """Make a rename or removal in ``folder`` durable; a filesystem that cannot fsync a folder is skipped."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # Windows cannot open a folder; the rename is as durable as the platform makes it
    try:
        os.fsync(fd)
    except OSError as err:
        if err.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _os_error(err: BaseException) -> OSError | None:
    """The OSError behind ``err``: torch's zip writer reports a failed write as a RuntimeError whose context it is."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, OSError) and err.errno is not None:
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def _open_locked_temporary(final: Path) -> tuple[IO[bytes], Path]:
    """A new temporary file beside ``final``, opened for writing and (where supported) exclusively flock-ed."""
    while True:
        fd, name = tempfile.mkstemp(prefix=f"{final.name}{TEMP_MARK}", suffix=TEMP_SUFFIX, dir=final.parent)
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_nlink == 0:  # a cleaner removed it between mkstemp and flock: take another
                os.close(fd)
                continue
        return os.fdopen(fd, "wb"), Path(name)


def write_atomically(
    final: _PATH, write: Callable[[IO[bytes]], None], folder_key: str | None = None, mode: int | None = 0o644
) -> None:
    """Write ``final`` through ``write(file)``: into a temporary file beside it, fsynced, then renamed over it.

    Args:
        final: the destination; its folder is created if needed.
        write: fills the open binary file.
        folder_key: the config key that sets ``final``'s folder, named when the write fails.
        mode: permission bits of the new file (``mkstemp`` creates it 0600); None keeps 0600.

    Raises:
        CheckpointWriteError: the folder cannot be created or written (disk full, read-only, no permission); the
            temporary file is removed and ``final`` is untouched.
    """
    final = Path(final)
    temporary = None
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        file, temporary = _open_locked_temporary(final)
        with file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
            if mode is not None and hasattr(os, "fchmod"):
                os.fchmod(file.fileno(), mode & ~_UMASK)
            os.replace(temporary, final)  # still holding the lock: a cleaner never sees an unlocked complete temp
        temporary = None
        fsync_folder(final.parent)
    except BaseException as err:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        cause = _os_error(err)
        if cause is not None and not isinstance(err, CheckpointWriteError):
            raise CheckpointWriteError(final, cause, folder_key) from err
        raise


def link_atomically(target: _PATH, link: _PATH, folder_key: str | None = None) -> None:
    """Point ``link`` at ``target`` (a relative symlink) in one rename; a complete copy where symlinks fail."""
    target, link = Path(target), Path(link)
    if target.resolve() == link.resolve():
        return
    temporary = link.with_name(f"{link.name}{TEMP_MARK}{os.getpid()}-link{TEMP_SUFFIX}")
    try:
        temporary.unlink(missing_ok=True)
        os.symlink(os.path.relpath(target, link.parent), temporary)
        os.replace(temporary, link)
        fsync_folder(link.parent)
        return
    except OSError:
        temporary.unlink(missing_ok=True)  # e.g. Windows without the symlink privilege: copy instead
    with target.open("rb") as source:
        write_atomically(link, lambda file: shutil.copyfileobj(source, file, 1 << 20), folder_key)


def remove_stale_temporaries(folder: _PATH) -> list[Path]:
    """Delete the temporary files in ``folder`` that no live writer holds (left by a killed write); return them."""
    folder = Path(folder)
    removed: list[Path] = []
    if fcntl is None or not folder.is_dir():
        return removed
    for path in sorted(folder.glob(f"*{TEMP_MARK}*{TEMP_SUFFIX}")):
        if path.is_symlink():
            path.unlink(missing_ok=True)  # link_atomically's: renamed at once, so one left over is stale
            removed.append(path)
            continue
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue  # a live writer holds it
        try:
            path.unlink(missing_ok=True)
            removed.append(path)
        except OSError as err:
            log.warning("could not remove the partial checkpoint %s left by a killed write: %s", path, err)
        finally:
            os.close(fd)
    if removed:
        log.info("removed %d partial checkpoint file(s) left by a killed write: %s", len(removed), removed)
        fsync_folder(folder)
    return removed


def with_atomic_checkpoint_io(plugins: Any = None) -> list[Any]:
    """Trainer ``plugins`` (None, one, or a list) with :class:`AtomicCheckpointIO` added unless one is a CheckpointIO.

    ``pl.Trainer(plugins=with_atomic_checkpoint_io())`` is how the CLI's trainer gets it; a CheckpointIO the user
    configures (``--trainer.plugins``) is kept as it is.
    """
    listed = [] if plugins is None else list(plugins) if isinstance(plugins, list | tuple) else [plugins]
    if not any(isinstance(plugin, CheckpointIO) for plugin in listed):
        listed.append(AtomicCheckpointIO())
    return listed


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose local files are written atomically in their own folder (see the module docstring).

    Remote paths (``s3://`` and other fsspec protocols) go through Lightning's own writer unchanged.

    Args:
        folder_key: the config key that sets the checkpoint folder, named when a write fails. The CLI sets it to the
            key that decided this run's folder.
    """

    def __init__(self, folder_key: str | None = None) -> None:
        self.folder_key = folder_key

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None) -> None:
        """Write ``checkpoint`` to ``path`` through a temporary file in ``path``'s folder and one rename."""
        if storage_options is not None or not _is_local_file_protocol(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        write_atomically(Path(path), lambda file: torch.save(checkpoint, file), self.folder_key)
