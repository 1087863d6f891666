"""Output paths, checked before any work is done, so that a long run never fails at its end
because of where it writes.

``output_file`` is for one file written atomically (a temporary sibling, then a rename);
``output_folder`` for a folder that is created or filled (``--report``, ``--dump-ir``), or
replaced as a whole (``compile -o``). Both raise a one-line UserInputError naming the option,
the path and what to do, and leave nothing behind (a probe file shows that the folder takes
new files, and is removed).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Collection
from pathlib import Path

from snn2hw.errors import UserInputError

# atomic_write and write_compiled name their temporary siblings ".NAME.XXXXXXXX.tmp" and
# ".NAME.old.XXXXXXXX": the final name must leave room for that on the file system.
TEMP_EXTRA = len("..old.XXXXXXXX.tmp")


def output_file(path: str | os.PathLike[str], option: str) -> Path:
    """Check a file that will be written by renaming a temporary sibling over it."""
    p = _nonempty(path, option, "a file path, e.g. out.npz")
    _check_length(p, option)
    if p.is_dir():
        raise UserInputError(f"{option} '{_shown(p)}' is an existing folder",
                             hint=f"Name a file inside it, e.g. {_shown(p / 'out')}.")
    if p.exists() and not p.is_file():
        raise UserInputError(f"{option} '{_shown(p)}' exists and is not a regular file (a device "
                             "or pipe would be replaced by the result)",
                             hint="Give the path of a regular file.")
    _writable_folder(p.parent, option, exists=True)
    return p


def output_folder(path: str | os.PathLike[str], option: str, *,
                  replaces: Collection[str] | None = None,
                  files: Collection[str] = ()) -> Path:
    """Check a folder that will be created if missing and written into; ``files`` are the
    names written inside it. With ``replaces`` (the names a previous run leaves there) the
    folder is replaced as a whole: it must not hold or contain anything else, nor be the
    current folder or one above it."""
    p = _nonempty(path, option, "a folder path, e.g. out/")
    _check_length(p, option)
    if p.exists() and not p.is_dir():
        raise UserInputError(f"{option} '{_shown(p)}' exists and is not a folder",
                             hint="Give a folder path (a new one is created).")
    _writable_folder(p.parent, option, exists=False)
    if replaces is not None:
        _replaceable(p, option, replaces)
    for name in files:
        if (p / name).is_dir():
            raise UserInputError(f"{option} '{_shown(p)}' holds a folder '{name}' where a file "
                                 "is written", hint="Remove it or choose another folder.")
    return p


def inside(path: str | os.PathLike[str], folder: str | os.PathLike[str]) -> bool:
    """Whether path is folder or lies under it (symbolic links followed)."""
    real, top = Path(path).resolve(), Path(folder).resolve()
    return real == top or top in real.parents


def _nonempty(path: str | os.PathLike[str], option: str, example: str) -> Path:
    if not os.fspath(path).strip():
        raise UserInputError(f"{option} is empty", hint=f"Give {example}.")
    return Path(path)


def _name_max(p: Path) -> tuple[int, int]:
    """NAME_MAX and PATH_MAX of the file system holding p's nearest existing folder."""
    try:
        folder = _nearest_existing(p.parent)
        return (os.pathconf(folder, "PC_NAME_MAX"), os.pathconf(folder, "PC_PATH_MAX"))
    except (OSError, ValueError):
        return 255, 4096


def input_path(path: str | os.PathLike[str], option: str) -> None:
    """A file to read: a path longer than the file system allows names nothing (the OS would
    answer ENAMETOOLONG); whether it exists is for its reader to say."""
    if os.fspath(path):
        _check_length(Path(path), option, extra=0)


def _check_length(p: Path, option: str, *, extra: int = TEMP_EXTRA) -> None:
    """Outputs (extra > 0) leave room for their temporary sibling's name; an input path over
    the limit cannot name an existing file."""
    name_max, path_max = _name_max(p)
    verdict, hint = ("cannot exist", "Check the path.") if not extra else ("is too long", "")
    full = len(os.fsencode(os.path.abspath(p)))
    if full + extra >= path_max:
        raise UserInputError(f"{option} '{_shown(p)}' {verdict}: {full} bytes as an absolute "
                             f"path, this file system allows {path_max - 1 - extra}",
                             hint=hint or "Choose a shorter path.")
    for part in p.parts:
        size = len(os.fsencode(part))
        if size + extra > name_max:
            room = " (room is left for a temporary name)" if extra else ""
            raise UserInputError(f"{option} '{_shown(p)}' {verdict}: a name of {size} bytes, "
                                 f"this file system allows {name_max - extra}{room}",
                                 hint=hint or "Choose a shorter name.")


def _nearest_existing(folder: Path) -> Path:
    folder = Path(os.path.abspath(folder))
    while not os.path.lexists(folder):
        folder = folder.parent
    return folder


def _writable_folder(folder: Path, option: str, *, exists: bool) -> None:
    """The folder the output goes into must exist (or, with exists=False, be creatable)."""
    found = _nearest_existing(folder)
    if not found.is_dir():
        raise UserInputError(f"{option}: '{_shown(found)}' is not a folder, so nothing can be "
                             "written under it", hint="Choose another path.")
    if exists and found != Path(os.path.abspath(folder)):
        raise UserInputError(f"{option}: folder '{_shown(folder)}' does not exist",
                             hint="Create it first or choose another path.")
    _probe(found, option)


def _probe(folder: Path, option: str) -> None:
    """Create and remove a temporary file where the output's will go: permissions, read-only
    or pseudo file systems (/proc) fail now rather than after the run."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".snn2hw-probe.", suffix=".tmp", dir=folder)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise UserInputError(f"{option}: cannot write in folder '{_shown(folder)}' "
                             f"({exc.strerror or exc})",
                             hint="Choose a folder you can write to.") from None


def _replaceable(p: Path, option: str, replaces: Collection[str]) -> None:
    if inside(Path.cwd(), p):
        raise UserInputError(f"{option} '{_shown(p)}' is the current folder or contains it; the "
                             "output folder is replaced as a whole",
                             hint="Give a new folder, e.g. -o out/.")
    if not p.is_dir():
        return
    others = sorted(e.name for e in p.iterdir() if e.name not in replaces)
    if others:
        listed = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3
                                          else "")
        raise UserInputError(f"{option} '{_shown(p)}' holds files this command did not write "
                             f"({listed}); the output folder is replaced as a whole",
                             hint="Give a new or empty folder, or remove those files.")


def _shown(p: Path | str) -> str:
    """A path as written in a message: very long ones are cut."""
    text = os.fspath(p)
    return text if len(text) <= 80 else f"{text[:40]}...{text[-20:]} ({len(text)} characters)"


__all__ = ["input_path", "inside", "output_file", "output_folder"]
