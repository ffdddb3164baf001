"""Where a build goes: a lock, a staging folder beside the output, one rename when all is written.

A build never writes into its output folder. It takes an exclusive lock (``.<name>.lock`` beside
the output), writes every shard, the card, the spec and the report into a staging folder beside
the output (``.<name>.building-<pid>-<hex>``, so on the same filesystem) and, only when all of them
are written, renames the staging folder to the output. So:

* a build that fails, is interrupted (Ctrl-C) or runs out of disk leaves the output as it was
  (absent, or the earlier dataset) and removes its staging folder; a build killed outright
  leaves one, which the next build into the same output removes;
* ``--overwrite`` keeps the earlier dataset until the new one is complete, then swaps the two
  (the earlier one is renamed aside, ``.<name>.replaced-<pid>-<hex>``, and deleted once the new
  one is in place; if the swap itself is interrupted the earlier dataset is put back);
* files a build did not write are never deleted: a build refuses an output that holds any, and
  names them;
* a second build into the same output, while the first runs, is refused with
  :class:`OutputLockedError`. The lock is an OS lock on the lock file (via ``filelock``), released
  when the build ends or its process dies, so a crash never leaves a stale lock behind; the empty
  lock file itself may stay.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from aesformer_hf.data.parquet import DATA_FOLDER, REPORT_FILENAME
from aesformer_hf.data.schema import SPEC_FILENAME

CARD_FILENAME = "README.md"
_SHARD_NAME = re.compile(r".+-\d{5}-of-\d{5}\.parquet|.+-\d{5}\.parquet\.partial")
_BUILDING, _REPLACED = "building", "replaced"


class OutputLockedError(FileExistsError):
    """Another build holds the lock of this output."""


def lock_path(output: Path) -> Path:
    """The lock file of ``output``: ``.<name>.lock`` in the same folder."""
    return output.parent / f".{output.name}.lock"


@contextmanager
def output_lock(output: Path) -> Iterator[Path]:
    """Hold the exclusive build lock of ``output``; raise :class:`OutputLockedError` at once if held."""
    path = lock_path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        holder = _read_holder(path)
        raise OutputLockedError(
            f"another prepare-dataset is building {output} (it holds the lock {path}"
            f"{f', process {holder}' if holder else ''}); wait until it ends, or choose another --output"
        ) from None
    try:
        _write_holder(path, str(os.getpid()))
        yield path
    finally:
        _write_holder(path, "")
        lock.release()


def _read_holder(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:  # e.g. Windows, where the holder's byte-range lock forbids reading
        return ""


def _write_holder(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError:  # the pid is only a courtesy in the message of a refused build
        pass


def written_by_a_build(output: Path, relative: str) -> bool:
    """Whether the file ``relative`` (posix path inside ``output``) is one a build writes."""
    if relative in (SPEC_FILENAME, REPORT_FILENAME):
        return True
    if relative == CARD_FILENAME:  # a card of ours carries the spec in its YAML header
        try:
            return "aesthetic_spec:" in (output / relative).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False
    folder, _, name = relative.rpartition("/")
    return folder == DATA_FOLDER and _SHARD_NAME.fullmatch(name) is not None


def foreign_files(output: Path) -> list[str]:
    """The files (and empty folders) in ``output`` that no build writes, as posix paths, sorted."""
    foreign = []
    for root, folders, files in os.walk(output):
        root_path = Path(root)
        for name in files:
            relative = (root_path / name).relative_to(output).as_posix()
            if not written_by_a_build(output, relative):
                foreign.append(relative)
        for name in folders:
            folder = root_path / name
            relative = folder.relative_to(output).as_posix()
            if folder.is_symlink() or (relative != DATA_FOLDER and not any(folder.iterdir())):
                foreign.append(relative + "/")
        folders[:] = [name for name in folders if not (root_path / name).is_symlink()]
    return sorted(foreign)


def check_output(output: Path, overwrite: bool) -> None:
    """Refuse an output a build may not replace: a file, a folder holding files no build writes
    (named in the error), or an earlier dataset without ``overwrite``."""
    if not output.exists() and not output.is_symlink():
        return
    if not output.is_dir():
        raise FileExistsError(f"--output {output} exists and is not a folder")
    foreign = foreign_files(output)
    if foreign:
        shown = ", ".join(foreign[:10]) + (f" and {len(foreign) - 10} more" if len(foreign) > 10 else "")
        raise FileExistsError(
            f"{output} holds files prepare-dataset did not write: {shown}. A build replaces the whole "
            "folder and never deletes files it did not write: move them out, or choose another --output"
        )
    if not overwrite and any(output.iterdir()):
        raise FileExistsError(f"{output} already holds a built dataset; pass --overwrite to replace it")


def _sibling(output: Path, kind: str) -> Path:
    return output.parent / f".{output.name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}"


def _siblings(output: Path, kind: str) -> list[Path]:
    pattern = re.compile(rf"\.{re.escape(output.name)}\.{kind}-\d+-[0-9a-f]{{8}}")
    return sorted(path for path in output.parent.iterdir() if pattern.fullmatch(path.name))


def new_staging_folder(output: Path) -> Path:
    """Create an empty staging folder beside ``output`` (same filesystem: publishing is a rename)."""
    staging = _sibling(output, _BUILDING)
    staging.mkdir()
    return staging


def recover_interrupted(output: Path) -> None:
    """Tidy what a build killed outright left beside ``output`` (call it holding the lock).

    Staging folders hold only what a build wrote and are deleted. An earlier dataset renamed aside
    by a swap that did not finish is put back when the output is missing, else deleted.
    """
    for staging in _siblings(output, _BUILDING):
        shutil.rmtree(staging, ignore_errors=True)
    for earlier in _siblings(output, _REPLACED):
        if not output.exists() and not output.is_symlink():
            earlier.rename(output)
        else:
            _delete_build(earlier)


def publish(staging: Path, output: Path) -> None:
    """Move the complete build in ``staging`` to ``output``, replacing the dataset there if any."""
    if not output.exists() and not output.is_symlink():
        staging.rename(output)
        return
    earlier = _sibling(output, _REPLACED)
    output.rename(earlier)
    try:
        staging.rename(output)
    except BaseException:
        if not output.exists():
            earlier.rename(output)
        raise
    _delete_build(earlier)


def _delete_build(folder: Path) -> None:
    """Delete the files a build writes in ``folder``, then the folder if nothing else is left."""
    for root, _, files in os.walk(folder, topdown=False):
        for name in files:
            path = Path(root) / name
            if written_by_a_build(folder, path.relative_to(folder).as_posix()):
                path.unlink()
        if Path(root) != folder and Path(root).relative_to(folder).as_posix() == DATA_FOLDER:
            _remove_if_empty(Path(root))
    if not _remove_if_empty(folder):
        warnings.warn(
            f"kept {folder}: it holds files prepare-dataset did not write: {', '.join(foreign_files(folder))}",
            stacklevel=3,
        )


def _remove_if_empty(folder: Path) -> bool:
    try:
        folder.rmdir()
    except OSError:
        return False
    return True
