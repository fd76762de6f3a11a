"""Small helpers shared by the core modules: lazy imports and safe, atomic writes of folders and files.

The write rules (a user's files are never lost):

- A folder is written in a temporary sibling and swapped in with one ``renameat2(RENAME_EXCHANGE)``, so at every
  instant the path holds the complete old folder or the complete new one, for readers and after a crash alike.
  (Where the kernel has no exchange, two renames with recovery of a folder a crash left aside.)
- An existing folder is replaced only when every file in it was written by zoo as an artefact of the same kind
  (``owned(folder)`` names those files). Anything else is refused with one line naming ``--overwrite``; with
  ``overwrite=True`` zoo's files are replaced and every other file is carried into the new folder — nothing a user
  put there is deleted.
- Writers of one folder take turns (``flock`` on the parent folder around the swap); leftovers of a killed writer
  (``.NAME.tmp-PID-*``) are removed by the next writer once that process is gone.
- New folders and files get the permissions of the user's umask (``tempfile`` alone would leave folders 0700).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import importlib
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from zoo.errors import ZooError

# owned(folder) → the relative paths of the files a zoo artefact of one kind holds there, or None if the folder is
# not such an artefact
Owned = Callable[[Path], "set[str] | None"]

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def import_object(ref: str | Any) -> Any:
    """``"package.module:attr"`` → the object (lazy imports keep registration torch-free); callables pass through."""
    if not isinstance(ref, str):
        return ref
    module, _, attr = ref.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def files_in(folder: Path) -> set[str]:
    """Relative paths of every file (and symlink) below ``folder``."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if not p.is_dir() or p.is_symlink()}


def check_target(folder: str | os.PathLike[str], owned: Owned, what: str, *, overwrite: bool = False) -> list[str]:
    """Refuse to write artefact ``what`` into ``folder`` if it holds files zoo did not write there (unless
    ``overwrite``); returns those foreign files (carried over into the new folder when ``overwrite``)."""
    folder = Path(folder)
    if not folder.exists() and not folder.is_symlink():
        return []
    if not folder.is_dir():
        raise ZooError(f"{folder} exists and is not a folder; choose another path for the {what}")
    present = files_in(folder)
    if not present:
        return []
    mine = owned(folder)
    foreign = sorted(present - (mine or set()))
    if foreign and not overwrite:
        kind = "files zoo did not write" if mine is None else "files besides the previous " + what
        raise ZooError(f"{folder} already holds {kind} (e.g. {foreign[0]!r}); choose a new path, or pass "
                       f"--overwrite (overwrite=True) to replace zoo's files there and keep the others")
    return foreign


@contextmanager
def _parent_lock(parent: Path) -> Iterator[None]:
    """Writers of folders in ``parent`` take turns for the swap (a few milliseconds)."""
    fd = os.open(parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_leftovers(folder: str | os.PathLike[str]) -> None:
    """Remove what killed writers of ``folder`` left beside it; put back a folder a crash left aside."""
    folder = Path(folder)
    if not folder.parent.is_dir():
        return
    for p in folder.parent.glob(f".{folder.name}.*-*"):
        kind, _, rest = p.name[len(folder.name) + 2:].partition("-")
        pid = rest.split("-", 1)[0]
        if kind not in ("tmp", "old") or not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        if kind == "old" and not folder.exists():
            os.rename(p, folder)  # the fallback swap was killed between its two renames
        else:
            shutil.rmtree(p, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux ``renameat2``); False where the system cannot."""
    libc = _libc()
    if libc is None:
        return False
    if libc.renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


_LIBC: list[Any] = []


def _libc() -> Any:
    if not _LIBC:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            _LIBC.append(libc if hasattr(libc, "renameat2") else None)
        except OSError:
            _LIBC.append(None)
    return _LIBC[0]


def _carry_over(folder: Path, tmp: Path, foreign: list[str]) -> None:
    """Bring the user's files into the new folder (hard links: instant, no copy) unless the new folder has a file
    of that name (``overwrite`` asked to replace it)."""
    for rel in foreign:
        src, dst = folder / rel, tmp / rel
        if dst.exists():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, dst, follow_symlinks=False)
        except OSError:
            shutil.copy2(src, dst, follow_symlinks=False)


@contextmanager
def atomic_folder(folder: str | os.PathLike[str], owned: Owned, what: str, *,
                  overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling folder to fill; on success it replaces ``folder`` atomically (see the module
    docstring for the rules that keep a user's files safe). ``owned`` recognises a previous artefact of this kind."""
    folder = Path(folder)
    check_target(folder, owned, what, overwrite=overwrite)  # fail before the work, not after
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}-{secrets.token_hex(8)}"
    try:
        tmp.mkdir(mode=0o700)  # inside the try: a SIGTERM exit right after the mkdir still removes the folder
        yield tmp
        mask = _umask()  # mkdtemp and some writers (safetensors) create 0700/0600: a shared folder needs the umask's
        for p in [tmp, *tmp.rglob("*")]:
            p.chmod((0o777 if p.is_dir() else 0o666) & ~mask)
        with _parent_lock(folder.parent):
            clean_leftovers(folder)
            foreign = check_target(folder, owned, what, overwrite=overwrite)  # again: another writer may have been
            _carry_over(folder, tmp, foreign)
            if not folder.exists():
                os.rename(tmp, folder)
            elif not _exchange(tmp, folder):
                old = folder.with_name(f".{folder.name}.old-{os.getpid()}-0")
                os.rename(folder, old)
                os.rename(tmp, folder)
                tmp = old
    finally:
        _remove_tree(tmp)  # the temporary folder, or after the swap the old one


def _remove_tree(path: Path) -> None:
    """``shutil.rmtree`` that finishes even when a signal handler raises mid-way (the CLI's SIGTERM exit), then
    lets that exit go on: a killed command removes its whole temporary folder, not half of it."""
    interrupted: BaseException | None = None
    for _ in range(3):
        try:
            shutil.rmtree(path, ignore_errors=True)
            break
        except BaseException as exc:  # noqa: BLE001 - re-raised below, once the folder is gone
            interrupted = exc
    if interrupted is not None:
        raise interrupted


@contextmanager
def atomic_file(path: str | os.PathLike[str], *, overwrite: bool = False, owned: Callable[[Path], bool] | None = None
                ) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write; on success it replaces ``path`` in one rename.

    An existing file is replaced only if ``owned(path)`` says zoo wrote it (e.g. an earlier run's result) or with
    ``overwrite``; otherwise one line names ``--overwrite``."""
    path = Path(path)
    if path.is_dir():
        raise ZooError(f"{path} is a folder; pass a file name")
    if path.exists() and not overwrite and not (owned is not None and owned(path)):
        raise ZooError(f"{path} already exists and zoo did not write it; choose another name or pass --overwrite")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(8)}{path.suffix}"
    try:
        tmp.touch(mode=0o600, exist_ok=False)  # inside the try, as atomic_folder's mkdir
        yield tmp
        tmp.chmod(0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def pinned_folder(folder: str | os.PathLike[str]) -> Iterator[tuple[Path, Callable[[], bool]]]:
    """Read a folder that a writer may swap at any moment: yields a path that keeps naming the folder opened here
    (``/proc/self/fd/N`` on Linux) and a ``replaced()`` check that tells whether ``folder`` was swapped since."""
    folder = Path(folder)
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        yield folder, lambda: False  # missing or unreadable: the caller's own checks say so
        return
    try:
        opened = os.fstat(fd)
        proc = Path(f"/proc/self/fd/{fd}")
        root = proc if proc.is_dir() else folder

        def replaced() -> bool:
            try:
                now = os.stat(folder)
            except OSError:
                return True
            return (now.st_ino, now.st_dev) != (opened.st_ino, opened.st_dev)

        yield root, replaced
    finally:
        os.close(fd)


@contextmanager
def run_lock(folder: Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``folder/.zoo.lock`` while a long job writes into ``folder``; a second job on the
    same folder is refused in one line instead of both 'succeeding' with the last one silently winning. A job that
    fails before writing anything leaves no folder it created behind."""
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / ".zoo.lock", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            raise ZooError(f"{folder} is in use by {what} in {holder}; wait for it to finish or choose another "
                           f"folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()}\n".encode(), 0)
        try:
            yield
        except BaseException:
            if created and {p.name for p in folder.iterdir()} == {".zoo.lock"}:
                (folder / ".zoo.lock").unlink()
                folder.rmdir()
            raise
    finally:
        os.close(fd)
