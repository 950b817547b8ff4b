"""Saving and loading reports: atomic writes (temp file, fsync, rename), schema-checked reads."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from pathlib import Path

from benchbox.errors import BadInput
from benchbox.files import os_reason, require_regular_file
from benchbox.schema import Report, report_from_json, report_to_json

DEFAULT_DIR = Path("reports")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Read once, at import (single-threaded): os.umask can only be read by setting it.
_UMASK = _umask()


def folder_problem(folder: Path, exc: OSError) -> str:
    """Why a folder cannot take a file, in words: a file in the way, or the OS's reason."""
    for part in (folder, *folder.parents):
        try:
            if part.exists():
                if not part.is_dir():
                    return f"{part} is a file, not a folder"
                break
        except OSError:  # a name the file system refuses (too long): the OS's reason says it
            continue
    return f"cannot write to {folder}: {os_reason(exc)}"


def _write_error(path: Path, exc: OSError) -> BadInput:
    if exc.errno == errno.ENAMETOOLONG:
        return BadInput(f"cannot write {path}: {os_reason(exc)}", "choose a shorter name")
    if path.is_dir():
        return BadInput(f"{path} is a folder", "give a file name, e.g. --out report.csv")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return BadInput(
            f"cannot write {path}: {exc.strerror}", "free some space, or choose another folder"
        )
    return BadInput(f"cannot write {path}: {exc.strerror or exc}", "choose another file or folder")


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write text so that readers see the old file or the new one, never a mix.

    The text goes to a temporary file in the same folder, is fsynced, then renamed over the
    target; a writer killed at any point leaves the old file intact (and at worst a stray
    `.NAME.*.tmp`). The new file keeps the old one's permissions (else 0666 less the umask).
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise BadInput(
            folder_problem(folder, exc),
            "choose a folder you can write to (e.g. --out /tmp/reports)",
        ) from None
    try:
        try:
            mode = path.stat().st_mode & 0o7777
        except OSError:
            mode = 0o666 & ~_UMASK
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise _write_error(path, exc) from None
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
    return path


def save_report(report: Report, path: str | Path) -> Path:
    """Write the report atomically and return its path."""
    return atomic_write_text(path, report_to_json(report))


def load_report(path: str | Path) -> Report:
    """Read and schema-check a report; BadInput with a clear message when it is not one."""
    path = Path(path)
    try:
        exists = path.exists()
    except OSError as exc:  # e.g. a name too long for the file system
        raise BadInput(f"cannot read report {path}: {os_reason(exc)}") from None
    if not exists:
        raise BadInput(
            f"report {path} does not exist", "list saved reports with `benchbox report list`"
        )
    if path.is_dir():
        raise BadInput(f"{path} is a folder, not a report file")
    require_regular_file(path, "report")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read report {path}: {exc}") from None
    return report_from_json(text, source=str(path))


def report_path(out_dir: str | Path, model_name: str, created: str) -> Path:
    """reports/<model>-<UTC timestamp>.json, made unique if that name is taken."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(model_name).stem)[:60] or "model"
    stamp = re.sub(r"[^0-9T]", "", created)[:15]
    path = Path(out_dir) / f"{stem}-{stamp}.json"
    n = 2
    while path.exists():
        path = Path(out_dir) / f"{stem}-{stamp}-{n}.json"
        n += 1
    return path


def save_new_report(report: Report, out_dir: str | Path, model_name: str) -> Path:
    """Save a new report under a fresh name (see `report_path`) and return the path.

    The name is taken atomically (a hard link of the written temp file fails if the name
    exists), so two sweeps started in the same second keep a report each, and readers never
    see a partly written file.
    """
    tmp = atomic_write_text(Path(out_dir) / f".new-{os.getpid()}.json.tmp", report_to_json(report))
    try:
        while True:
            path = report_path(out_dir, model_name, report.created)
            try:
                os.link(tmp, path)
                return path
            except FileExistsError:
                continue  # another sweep took the name between the check and the link
            except OSError:  # a file system without hard links: rename, as before
                os.replace(tmp, path)
                return path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def check_writable(out_dir: str | Path) -> Path:
    """Fail early (before any measuring) when the report folder cannot be written."""
    folder = Path(out_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=folder, prefix=".benchbox-probe-", delete=True)
        probe.close()
    except OSError as exc:
        problem = folder_problem(folder, exc).replace("cannot write to", "cannot write reports to")
        raise BadInput(problem, "choose a folder you can write to with --out") from None
    return folder


def iter_reports(folder: str | Path) -> list[tuple[Path, Report]]:
    """Every readable report in a folder, newest first; files that are not reports are skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BadInput(f"{folder} is not a folder of reports")
    out = []
    for path in sorted(folder.glob("*.json")):
        try:
            out.append((path, load_report(path)))
        except BadInput:
            continue
    out.sort(key=lambda pr: pr[1].created, reverse=True)
    return out
