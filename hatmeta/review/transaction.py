"""Writes to the extraction as one transaction: a lock, a journal, and recovery by the next command.

``add-trial`` changes up to four files. A crash between two renames must not leave trials.csv new and
arms.csv old, and two writers must not both read the old files and each replace them. The protocol:

1. ``locked(folder)``: an exclusive ``fcntl.flock`` on ``folder/.hatmeta.lock``, held from the read that
   validates the new rows to the last rename (the file is removed by its holder on release; a waiter
   that then holds a removed file's lock tries again). A second writer polls for ``HATMETA_LOCK_TIMEOUT`` seconds
   (default 30), then gives up with an InputError naming the lock (exit 2).
2. ``commit(folder, contents)``: every new file is written in full to a temporary file beside its target
   (``.trials.csv.<token>.hatmeta-tmp``) and fsynced; then the journal (``.hatmeta-journal.json``: target,
   temporary file and SHA-256 of each) is written to its own temporary file, fsynced and renamed into
   place, and the folder fsynced. The journal's rename is the commit point. Only then are the temporary
   files renamed over their targets; the folders are fsynced and the journal removed.
3. ``settle(folder)``, called by every command before it reads the extraction: a journal left by a killed
   writer is completed (its temporary files are complete, as they were fsynced before the journal
   existed); temporary files without a journal (a writer killed before its commit point) are removed.
   Either way a note on stderr says what was done. So after any kill the extraction is, byte for byte,
   the old one (killed before the commit point) or the new one (after it), once the next command ran.

A data file that is a symbolic link is written through: the temporary file is made beside the link's
target and renamed over the target, so the link itself stays. A journal names only the extraction's
own files (through their links), so a journal shipped in a hostile folder cannot move other files.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from ..errors import InputError

LOCK = ".hatmeta.lock"
JOURNAL = ".hatmeta-journal.json"
TMP_SUFFIX = ".hatmeta-tmp"
_LEGACY_SUFFIX = ".tmp"  # temporary files of the earlier writer (.trials.csv.<random>.tmp)

_held: set = set()  # folders whose lock this process holds (flock is per open file: re-entry would wait)


def _timeout() -> float:
    try:
        return max(0.0, float(os.environ.get("HATMETA_LOCK_TIMEOUT", "30")))
    except ValueError:
        raise InputError("HATMETA_LOCK_TIMEOUT must be a number of seconds") from None


def _key(folder) -> str:
    return os.path.realpath(folder)


@contextmanager
def locked(folder, timeout: float | None = None, optional: bool = False):
    """Hold the extraction's exclusive lock (re-entrant within one process).

    ``optional``: for readers; where the lock file cannot be made (a read-only folder, where no one
    writes either) read without it."""
    import fcntl

    key = _key(folder)
    if key in _held:
        yield
        return
    path = Path(folder) / LOCK
    wait = _timeout() if timeout is None else timeout
    deadline = time.monotonic() + wait
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError as exc:
            if optional and not Path(folder).joinpath(JOURNAL).exists():
                yield
                return
            raise InputError(f"cannot open the lock file ({exc.strerror})", file=str(path)) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if time.monotonic() >= deadline:
                raise InputError(f"another hatmeta command is writing this extraction (waited {wait:g} s for "
                                 "its lock; set HATMETA_LOCK_TIMEOUT to wait longer)", file=str(path)) from None
            time.sleep(0.02)
            continue
        # The holder removes the lock file when it is done: a lock taken on a file already removed
        # (or replaced) guards nothing, so take it again on the file now at the path.
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    _held.add(key)
    try:
        yield
    finally:
        _held.discard(key)
        try:
            os.unlink(path)  # while still holding it: no lock file is left in the folder
        except OSError:
            pass
        os.close(fd)  # releases the lock


def _fsync_dir(folder) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot fsync a folder; the file fsyncs still hold
    finally:
        os.close(fd)


def _target(path: Path) -> Path:
    """Where the bytes of ``path`` live: the file itself, or the final target of a symbolic link."""
    if path.is_symlink():
        real = Path(os.path.realpath(path))
        if not real.is_file():
            raise InputError("is a symbolic link to no regular file; refusing to write through it", file=str(path))
        return real
    return path


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hook(stage: str) -> None:
    """Fault injection for the reliability tests: HATMETA_TEST_KILL=<stage> kills this process there."""
    if os.environ.get("HATMETA_TEST_KILL") == stage:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def commit(folder, contents: dict) -> None:
    """Replace the files of ``contents`` ({Path: bytes}) all or none, crash-safe (see the module's docstring).

    Call it with the folder's lock held."""
    folder = Path(folder)
    token = secrets.token_hex(4)
    entries, dirs = [], {str(folder)}
    try:
        for path, data in contents.items():
            target = _target(Path(path))
            tmp = target.parent / f".{target.name}.{token}{TMP_SUFFIX}"
            mode = target.stat().st_mode & 0o7777 if target.exists() else 0o644
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
            entries.append({"file": Path(path).name, "target": str(target), "temp": str(tmp), "sha256": _sha(data)})
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fchmod(fh.fileno(), mode)
                os.fsync(fh.fileno())
            dirs.add(str(target.parent))
        for d in dirs:
            _fsync_dir(d)
        _hook("journal")
        journal_tmp = folder / f"{JOURNAL}.{token}{TMP_SUFFIX}"
        with open(journal_tmp, "w", encoding="utf-8") as fh:
            json.dump({"version": 1, "files": entries}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(journal_tmp, folder / JOURNAL)  # the commit point
        _fsync_dir(folder)
    except OSError as exc:
        for e in entries:
            Path(e["temp"]).unlink(missing_ok=True)
        (folder / f"{JOURNAL}.{token}{TMP_SUFFIX}").unlink(missing_ok=True)
        raise InputError(f"could not write the extraction ({exc.strerror or exc}); no file was changed",
                         file=str(folder)) from None
    originals = {e["target"]: (Path(e["target"]).read_bytes() if os.path.exists(e["target"]) else None)
                 for e in entries}
    moved: list = []
    try:
        _apply(folder, entries, moved)
    except OSError as exc:
        # Not a crash but a failed rename (a full or read-only disk): put back what was moved, so the
        # extraction is the old one now; if even that fails, the journal stays and the next command
        # completes the write instead.
        try:
            for target in moved:
                _put_back(Path(target), originals[target])
            for e in entries:
                Path(e["temp"]).unlink(missing_ok=True)
            os.unlink(folder / JOURNAL)
            _fsync_dir(folder)
        except OSError:
            raise InputError(f"the write was interrupted ({exc.strerror or exc}); the next hatmeta command in "
                             "this folder completes it", file=str(folder / JOURNAL)) from None
        raise InputError(f"could not write the extraction ({exc.strerror or exc}); no file was changed",
                         file=str(folder)) from None


def _put_back(target: Path, original: bytes | None) -> None:
    if original is None:
        target.unlink(missing_ok=True)
        return
    tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}{TMP_SUFFIX}"
    with open(tmp, "wb") as fh:
        fh.write(original)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, target.stat().st_mode & 0o7777 if target.exists() else 0o644)
    os.replace(tmp, target)


def _apply(folder: Path, entries: list, moved: list | None = None) -> None:
    for i, e in enumerate(entries, 1):
        _hook(f"rename{i}")
        if os.path.exists(e["temp"]):
            os.replace(e["temp"], e["target"])
            if moved is not None:
                moved.append(e["target"])
    for d in {str(folder)} | {str(Path(e["target"]).parent) for e in entries}:
        _fsync_dir(d)
    _hook("unjournal")
    os.unlink(folder / JOURNAL)
    _fsync_dir(folder)


def _note(text: str) -> None:
    print(f"note: {text}", file=sys.stderr)


def _leftovers(folder: Path, names) -> list:
    """Temporary files of interrupted writes: beside the extraction's files and their links' targets."""
    dirs = {folder}
    for name in names:
        p = folder / name
        if p.is_symlink():
            dirs.add(Path(os.path.realpath(p)).parent)
    out = []
    for d in dirs:
        try:
            listing = os.listdir(d)
        except OSError:
            continue
        for entry in listing:
            if not entry.startswith("."):
                continue
            if entry.endswith(TMP_SUFFIX) and any(entry.startswith(f".{n}.") for n in (*names, JOURNAL.lstrip("."))):
                out.append(d / entry)
            elif entry.startswith(JOURNAL + ".") and entry.endswith(TMP_SUFFIX):
                out.append(d / entry)
            elif entry.endswith(_LEGACY_SUFFIX) and any(entry.startswith(f".{n}.") for n in names):
                out.append(d / entry)
    return out


def settle(folder, names) -> None:
    """Complete or clean up an interrupted write in ``folder`` before it is read (see the module docstring).

    ``names``: the extraction's file names; a journal may name only those. Fast when there is nothing to do
    (one listing of the folder)."""
    folder = Path(folder)
    try:
        listing = os.listdir(folder)
    except OSError:
        return  # the reader names the missing or unreadable folder
    if JOURNAL not in listing and not _leftovers(folder, names):
        return
    journal = folder / JOURNAL
    try:
        with locked(folder):
            if journal.exists():
                _complete(folder, journal, names)
            stale = _leftovers(folder, names)
            for p in stale:
                p.unlink(missing_ok=True)
            if stale:
                _note(f"removed {len(stale)} temporary file(s) of an interrupted write in {folder} "
                      "(it never reached its commit point: the extraction is as it was before it)")
    except OSError as exc:
        raise InputError(f"an interrupted write could not be completed or cleaned up ({exc.strerror or exc})",
                         file=str(journal)) from None


def _complete(folder: Path, journal: Path, names) -> None:
    allowed = {os.path.realpath(folder / n): n for n in names}
    try:
        entries = json.loads(journal.read_text(encoding="utf-8"))["files"]
        ok = isinstance(entries, list) and all(
            isinstance(e, dict) and allowed.get(os.path.realpath(e["target"])) is not None
            and Path(e["temp"]).parent == Path(e["target"]).parent
            and Path(e["temp"]).name.startswith(f".{Path(e['target']).name}.")
            and e["temp"].endswith(TMP_SUFFIX) for e in entries)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        ok = False
    if not ok:
        raise InputError("not a journal this version of hatmeta wrote (it names files outside the extraction "
                         "or is damaged); remove it by hand after checking the extraction", file=str(journal))
    for e in entries:
        temp, target = Path(e["temp"]), Path(e["target"])
        have = temp if temp.exists() else target
        if not have.exists() or _sha(have.read_bytes()) != e["sha256"]:
            raise InputError(f"the journal's {e['file']} does not match its file (changed by hand since the "
                             "interrupted write?); remove the journal by hand after checking the extraction",
                             file=str(journal))
    _apply(folder, entries)
    _note(f"completed an interrupted write in {folder}: {', '.join(e['file'] for e in entries)} now hold its rows")


# ---------------------------------------------------------------- folders replaced whole (hatmeta report)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two folders atomically (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    import errno

    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP if hasattr(errno, "ENOTSUP") else errno.EINVAL):
        return False
    raise OSError(err, os.strerror(err), str(b))


def staging_folder(out: Path) -> Path:
    """A fresh, empty folder beside ``out`` to build its replacement in (same file system: renames are atomic).

    ``out`` must not be a symbolic link (a cloned repository's reports/ could point anywhere)."""
    import shutil
    import tempfile

    out = Path(out)
    if out.is_symlink():
        raise InputError("is a symbolic link; the report is written only into a real folder", file=str(out))
    if out.exists() and not out.is_dir():
        raise InputError("exists and is not a folder", file=str(out))
    parent = out.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    for stale in parent.glob(f".{out.name}.*{TMP_SUFFIX}"):  # left by a killed run
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=TMP_SUFFIX, dir=parent))


def carry_over(old: Path, new: Path, generated: set) -> None:
    """Copy into ``new`` what ``old`` holds that is not an output of the report (a README, .gitattributes):
    entries not in ``generated`` (old manifest's names) and not already in ``new``. Symbolic links are
    copied as links, never followed."""
    import shutil

    if not old.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(old, followlinks=False):
        rel = Path(dirpath).relative_to(old)
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            r = (rel / name).as_posix()
            src, dst = Path(dirpath) / name, new / rel / name
            if r in generated or dst.exists() or dst.is_symlink():
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_symlink():
                os.symlink(os.readlink(src), dst)
            else:
                shutil.copy2(src, dst, follow_symlinks=False)


def swap_in(stage: Path, out: Path) -> None:
    """Put the finished ``stage`` at ``out`` in one step; the old folder is removed afterwards."""
    import shutil

    out = Path(out)
    _fsync_dir(stage)
    if not out.exists():
        os.rename(stage, out)
    elif _exchange(stage, out):
        shutil.rmtree(stage)  # now the old folder
    else:
        old = stage.with_name(stage.name.replace(TMP_SUFFIX, ".old" + TMP_SUFFIX))
        os.rename(out, old)
        os.rename(stage, out)
        shutil.rmtree(old)
    _fsync_dir(out.absolute().parent)
