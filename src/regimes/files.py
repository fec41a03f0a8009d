"""Files on disk, the one way: written atomically (a temporary file beside the final one, renamed
over it once complete, so a reader never sees half a file), with the permissions the user's umask
gives (never private by accident: colleagues and Dask workers on a shared file system read
results), never through a symbolic link out of the folder they belong to; and path checks that
answer False for a name the file system cannot hold (too long, a NUL byte) instead of raising.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from regimes.errors import RegimesError


class WriteError(RegimesError):
    """A file cannot be written where asked (outside its folder, through a link, not a folder)."""


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def umask() -> int:
    """The process's umask, read without changing it (Linux: /proc; elsewhere set and restored)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def file_mode() -> int:
    """Permissions of a new file as `open()` would give it (0o666 less the umask)."""
    return 0o666 & ~umask()


def dir_mode() -> int:
    """Permissions of a new folder as `mkdir` would give it (0o777 less the umask)."""
    return 0o777 & ~umask()


def _ask(path: Path, test: Callable[[Path], bool]) -> bool:
    try:
        return test(path)
    except (OSError, ValueError):  # a name too long, a NUL byte, a loop of links
        return False


def is_file(path: str | Path) -> bool:
    """`Path.is_file()`, False for a name the file system cannot hold (too long, bad bytes)."""
    return _ask(Path(path), Path.is_file)


def is_dir(path: str | Path) -> bool:
    """`Path.is_dir()`, False for a name the file system cannot hold."""
    return _ask(Path(path), Path.is_dir)


def exists(path: str | Path) -> bool:
    """`Path.exists()` without following a final link, False for an unusable name."""
    return _ask(Path(path), lambda p: p.exists() or p.is_symlink())


def usable_name(path: str | Path) -> bool:
    """Whether the file system can look the name up at all (not too long, no NUL bytes)."""
    try:
        os.lstat(path)
    except FileNotFoundError:
        return True
    except NotADirectoryError:
        return True
    except (OSError, ValueError):
        return False
    return True


def missing_reason(path: str | Path) -> str:
    """Why `path` cannot be read as a file, in a few words: "is a folder, not a file", "does
    not exist", "is not a usable file name (...)" or "is not a regular file"."""
    path = Path(path)
    if not usable_name(path):
        return "is not a usable file name (too long, or a NUL byte)"
    if is_dir(path):
        return "is a folder, not a file"
    if exists(path):
        return "is not a regular file"
    return "does not exist"


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` with control characters (NUL, escape, bidirectional overrides) written as escapes,
    so a message never echoes them raw to a terminal."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def shorten(text: str, limit: int = 120) -> str:
    """`text` cut in the middle to at most `limit` characters (for names in messages)."""
    return text if len(text) <= limit else f"{text[: limit // 2]}...{text[-limit // 3 :]}"


def within(root: str | Path, path: str | Path) -> bool:
    """Whether `path` lies inside the folder `root` with no symbolic link on the way: every
    component after `root` that exists is a real file or folder, and the resolved path is under
    the resolved root."""
    root, path = Path(root), Path(path)
    try:
        rel = path.relative_to(root)
    except ValueError:
        return False
    if ".." in rel.parts:
        return False
    node = root
    for part in rel.parts:
        node = node / part
        try:
            if node.is_symlink():
                return False
        except (OSError, ValueError):
            return False
    try:
        return path.resolve().is_relative_to(root.resolve())
    except (OSError, ValueError, RuntimeError):
        return False


def make_dirs(path: str | Path, root: str | Path | None = None) -> Path:
    """Create a folder and its missing parents (umask permissions); with `root`, the folder must
    lie inside it without a link on the way, else a WriteError."""
    path = Path(path)
    if root is not None and not within(root, path):
        raise WriteError(f"{shorten(str(path))}: outside {root} or reached through a link; not "
                         "written (remove the link)")  # fmt: skip
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise WriteError(f"{shorten(str(path))}: a file is in the way of this folder") from None
    except OSError as exc:
        raise WriteError(f"{shorten(str(path))}: cannot create the folder "
                         f"({exc.strerror or exc})") from None  # fmt: skip
    return path


def temporary_dir(parent: str | Path, prefix: str) -> Path:
    """A new hidden working folder in `parent` with the permissions a plain `mkdir` would give
    (`tempfile.mkdtemp` makes it private), for assembling a result renamed into place later."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    os.chmod(tmp, dir_mode())
    return tmp


def write_atomic(
    path: str | Path, write: Callable[[Path], Any], *, root: str | Path | None = None
) -> Path:
    """Write a file atomically: `write(tmp)` writes a temporary file beside `path`, which is then
    flushed to disk, given the umask's permissions and renamed over `path` (a link at `path` is
    replaced, never followed). With `root`, `path` must lie inside that folder with no link on
    the way (else a WriteError, nothing written). Returns `path`."""
    path = Path(path)
    if root is not None and not within(root, path):
        raise WriteError(f"{shorten(str(path))}: outside {root} or reached through a link; not "
                         "written (remove the link)")  # fmt: skip
    fd, name = tempfile.mkstemp(prefix=f".{path.name[:80]}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        fd = os.open(tmp, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            os.fsync(fd)
            os.fchmod(fd, file_mode())
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_bytes_atomic(path: str | Path, data: bytes, *, root: str | Path | None = None) -> Path:
    """Write bytes to `path` atomically (see `write_atomic`)."""
    return write_atomic(path, lambda tmp: tmp.write_bytes(data), root=root)


def write_text_atomic(path: str | Path, text: str, *, root: str | Path | None = None) -> Path:
    """Write UTF-8 text to `path` atomically (see `write_atomic`)."""
    return write_bytes_atomic(path, text.encode("utf-8"), root=root)


def copy_atomic(src: str | Path, path: str | Path, *, root: str | Path | None = None) -> Path:
    """Copy the file `src` to `path` atomically (see `write_atomic`)."""
    return write_atomic(path, lambda tmp: shutil.copyfile(src, tmp), root=root)


def write_json_atomic(path: str | Path, data: Any, *, root: str | Path | None = None) -> Path:
    """Write `data` as indented JSON to `path` atomically (see `write_atomic`)."""
    return write_text_atomic(path, json.dumps(data, indent=2, default=str) + "\n", root=root)


def read_json(path: str | Path, what: str) -> Any:
    """A JSON file's contents; a missing, unreadable, truncated or corrupt one is a
    RegimesError naming it and what it is."""
    path = Path(path)
    if not is_file(path):
        raise RegimesError(f"{shorten(str(path))}: the {what} {missing_reason(path)}")
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        reason = (getattr(exc, "strerror", None) or str(exc) or type(exc).__name__).splitlines()
        raise RegimesError(
            f"{shorten(str(path))}: the {what} is unreadable or corrupt ({reason[0]})"
        ) from None
