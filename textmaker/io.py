"""Atomic writes: nothing a user made is left half-written.

A file is written beside its target and renamed over it; a directory is built
under a temporary name and renamed into place only when it is complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator, Sequence

from textmaker.errors import TextmakerError


def write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def read_json(path: str | Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_lines(path: str | Path, lines: list[str]) -> None:
    write_text(path, "".join(f"{line}\n" for line in lines))


def read_lines(path: str | Path, max_bytes: int = 64 << 20) -> list[str]:
    """Lines of a regular text file of sane size (a vocabulary linked to /dev/zero is refused, not read)."""
    path = Path(path)
    if not path.is_file():
        raise TextmakerError(f"{path}: not a regular file; it should be a text file")
    if path.stat().st_size > max_bytes:
        raise TextmakerError(f"{path}: {path.stat().st_size:,} bytes, more than the {max_bytes:,} a file of "
                             f"this kind can hold; the file is damaged or not the right one")
    try:
        with open(path, encoding="utf-8") as f:
            return [line.rstrip("\n") for line in f]
    except UnicodeDecodeError as e:
        raise TextmakerError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _pid_of(leftover: Path, prefix: str) -> int | None:
    """The writer's pid in a leftover's name (.NAME.PID.xxxx.partial / .NAME.PID.old)."""
    first = leftover.name[len(prefix):].split(".")[0]
    return int(first) if first.isdigit() else None


def recover(path: str | Path) -> None:
    """Finish what an interrupted replace of `path` left: if a kill fell between moving the old
    directory aside and moving the new one in, put the old one back; remove the leftovers of
    writers that are gone."""
    path = Path(path)
    if not path.parent.is_dir():
        return
    prefix = f".{path.name}."
    for leftover in sorted(path.parent.glob(prefix + "*"), key=lambda p: p.stat().st_mtime, reverse=True):
        pid = _pid_of(leftover, prefix)
        if pid is None or pid == os.getpid() or _pid_alive(pid) or not leftover.is_dir():
            continue
        if leftover.name.endswith(".old") and not path.exists():
            os.replace(leftover, path)  # the previous complete directory, back in place
        elif ".partial" in leftover.name or leftover.name.endswith(".old"):
            shutil.rmtree(leftover, ignore_errors=True)


@contextlib.contextmanager
def atomic_directory(path: str | Path, keep: Sequence[str] = ()) -> Iterator[Path]:
    """Yield a fresh temporary directory that replaces `path` only on success.

    An interrupted save leaves the previous directory (if any) in place, or, killed between
    the two renames of the replace, beside it where the next run's recover() puts it back;
    never a half-written one that looks finished.
    keep: paths inside the previous directory carried into the new one (the members of an
    averaged model), hard-linked so that no kill can lose them and no large file is copied.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    recover(path)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".partial"))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for name in keep:
        if (path / name).exists() and not (tmp / name).exists():
            try:
                shutil.copytree(path / name, tmp / name, copy_function=os.link, symlinks=True)
            except OSError:  # a file system without hard links
                shutil.rmtree(tmp / name, ignore_errors=True)
                shutil.copytree(path / name, tmp / name, symlinks=True)
    old = None
    if path.exists():
        old = path.with_name(f".{path.name}.{os.getpid()}.old")
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# ---- where a run may write ---------------------------------------------

def is_textmaker_dir(path: Path) -> bool:
    """A model directory, an export directory, or an interrupted training run's (its checkpoints)."""
    for name in ("config.json", "metadata.json"):
        try:
            if isinstance(read_json(path / name).get("task"), str):
                return True
        except (OSError, ValueError, AttributeError):
            pass
    if (path / "checkpoints" / "trainer_state.json").is_file():
        return True
    # an averaged run's members (create_averaged), before the average is written
    members = path / "members"
    return members.is_dir() and {p.name for p in path.iterdir()} == {"members"} and \
        all(p.name.startswith(".") or is_textmaker_dir(p) or (p.is_dir() and not any(p.iterdir()))
            for p in members.iterdir())


def check_output(path: str | Path, overwrite: bool = False, resume: bool = False, flag: str = "--output") -> Path:
    """Refuse, before any work, to write where something that is not textmaker's would be lost.
    flag: how the message names the path (the CLI's flag, or the API's argument)."""
    path = Path(path)
    recover(path)
    if path.exists() and not path.is_dir():
        raise TextmakerError(f"{flag} {path}: is a file; give a folder path (nothing was written)")
    resolved, here = path.resolve(), Path.cwd().resolve()
    if resolved == here or resolved in here.parents:
        raise TextmakerError(f"{flag} {path}: is the current folder or one above it; give a new folder, "
                             f"e.g. {flag} runs/model")
    if path.is_dir() and any(path.iterdir()):
        if not is_textmaker_dir(path):
            raise TextmakerError(f"{flag} {path}: the folder holds files textmaker did not make; give a new or "
                                 f"empty folder (nothing was written)")
        if not (overwrite or resume):
            raise TextmakerError(f"{flag} {path}: already holds a textmaker model; pass --overwrite to replace it"
                                 f" (or --resume to continue an interrupted training)")
    existing = next(p for p in [path, *path.parents] if p.exists())
    try:
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as e:
        raise TextmakerError(f"{flag} {path}: cannot write in {existing} ({e.strerror}); choose a writable "
                             f"folder") from None
    return path


_HELD: set[Path] = set()


@contextlib.contextmanager
def output_lock(path: str | Path) -> Iterator[None]:
    """One writer per output: a second run on the same path is refused while the first lives."""
    path = Path(path).absolute()
    if path in _HELD:  # this process already holds it (a save inside a locked training run)
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_name(f".{path.name}.lock")
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            try:
                pid = int(lock.read_text().strip() or 0)
            except (OSError, ValueError):
                pid = 0
            if pid and _pid_alive(pid):
                raise TextmakerError(f"{path}: another textmaker run (pid {pid}) is writing it; wait for it "
                                     f"to finish, or choose another output") from None
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock)  # left by a run that is gone
    else:
        raise TextmakerError(f"{path}: could not take its lock {lock}; remove the file if no run is writing")
    with os.fdopen(fd, "w") as f:
        f.write(str(os.getpid()))
    _HELD.add(path)
    try:
        yield
    finally:
        _HELD.discard(path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)
