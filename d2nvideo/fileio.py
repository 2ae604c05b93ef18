"""Safe outputs: never overwrite an input, refuse existing outputs unless asked, and write through
a temporary file that is moved into place only when the work finished.

Temporary files are named ``.NAME.PID-XXXXXXXX.partSUFFIX`` beside the output and hold an
exclusive lock while they are written, so a later run can tell the leftovers of a killed
process (no live writer, no lock) from another process's work in progress, and delete them.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

from .errors import InputError, OutputError, PathError, UsageError

try:
    import fcntl
except ImportError:  # not POSIX: stale files are told by their writer's pid alone
    fcntl = None  # type: ignore[assignment]

_PART = re.compile(r"^\..*\.(\d+)-[0-9a-f]{8}\.part(\.[^.]*)?$")
_SWEPT: set[str] = set()  # folders already cleaned of stale temporary files by this process


# File names in CSV and text lists are written and read as their bytes: a name that is not
# UTF-8 round-trips (PEP 383)
NAME_ERRORS = "surrogateescape"


def within(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies inside it, links and ``..`` resolved."""
    where, inside = path.resolve(), folder.resolve()
    return where == inside or inside in where.parents


def not_a_folder(path: Path) -> str:
    """What is wrong with a path given where a folder goes: it does not exist, or is a file."""
    return "is not a folder" if path.exists() else "does not exist"


def files_under(root: Path) -> Iterator[Path]:
    """Every file under the folder ``root``, recursively, each folder's names in sorted order.
    Linked folders are followed (datasets are often assembled from links), each real folder
    once, so that a link loop or a second link to the same folder adds nothing; a link to
    ``root`` itself or to a folder above it is not followed (it would add what lies beside).

    A subfolder that cannot be listed (no permission, gone meanwhile) is left out with a
    warning naming it, as ``find`` and ``rsync`` go on: one locked folder in a dataset of
    thousands should not stop the run, nor be skipped unsaid. A ``root`` folder that cannot be
    listed is an InputError, since nothing at all would be found; a ``root`` that is no folder
    holds no files."""
    top = os.path.realpath(root)
    seen: set[str] = set()

    def unlistable(exc: OSError) -> None:
        where = exc.filename or root
        if os.path.realpath(where) == top:
            if os.path.isdir(root):
                raise InputError(f"folder '{root}' cannot be listed: {exc.strerror or exc}", root)
            return
        logging.getLogger(__name__).warning(
            "skipped '%s': it cannot be listed (%s)", where, exc.strerror or exc
        )

    for dirpath, dirnames, filenames in os.walk(root, onerror=unlistable, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen or (seen and top.startswith(os.path.join(real, ""))):
            dirnames.clear()
            continue
        seen.add(real)
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_file():  # a broken link is no file
                yield path


def as_path(value: object, what: str) -> Path:
    """A path from the public API (a str or an ``os.PathLike``), or a UsageError naming
    ``what``: ``Path(5)`` and ``Path(None)`` would be TypeErrors from deep inside, and
    ``Path("")`` the current folder (as the command line, '' is refused)."""
    if isinstance(value, str) and not value:
        raise UsageError(f"{what} is an empty path (''), which names nothing", value)
    if isinstance(value, (str, os.PathLike)):
        return Path(value)
    raise UsageError(f"{what} must be a path (str or pathlib.Path), not {value!r}", value)


def require_file(path: Path, what: str = "input") -> Path:
    """Return ``path`` if it is an existing readable regular file, else raise PathError.

    Pipes, sockets and devices are refused: reading them would consume (or wait for) a stream
    that every later stage opens again (issue 14)."""
    _require_existing(path, what)
    if path.is_dir():
        raise PathError(f"{what} '{path}' is a directory, expected a file", path)
    if not path.is_file():
        raise PathError(
            f"{what} '{path}' is not a regular file (a pipe, socket or device): save the stream "
            "to a file first",
            path,
        )
    if not os.access(path, os.R_OK):
        raise PathError(f"{what} '{path}' is not readable", path)
    return path


def require_input(path: Path) -> Path:
    """Return ``path`` if it exists and can be read (a file or a folder), else PathError."""
    _require_existing(path, "input")
    if path.is_dir():
        if not os.access(path, os.R_OK):
            raise PathError(f"input '{path}' is not readable", path)
        return path
    return require_file(path)


def _require_existing(path: Path, what: str) -> None:
    if not path.exists():
        raise PathError(f"{what} '{path}' does not exist", path)


def check_output(output: Path, inputs: list[Path], overwrite: bool, what: str = "output") -> None:
    """Refuse to write over an input, an existing file (unless ``overwrite``) or into a folder
    that does not exist or cannot be written; ``what`` names the output in the errors."""
    resolved = output.resolve()
    for src in inputs:
        if src.exists() and resolved == src.resolve():
            raise PathError(f"{what} '{output}' is the input; choose another path", output)
    if output.is_dir():
        raise PathError(f"{what} '{output}' is a directory, expected a file path", output)
    if os.path.lexists(output) and not overwrite:  # a dangling link too: it is the user's
        raise PathError(f"{what} '{output}' exists; pass --overwrite to replace it", output)
    if kind := _special(output):  # --overwrite renamed a file over a FIFO or a device
        raise PathError(
            f"{what} '{output}' is {kind}, not a file: choose a file path",
            output,
        )
    parent = resolved.parent
    if not parent.is_dir():
        raise OutputError(f"{what} folder '{parent}' {not_a_folder(parent)}", parent)
    if not os.access(parent, os.W_OK):
        raise OutputError(f"{what} folder '{parent}' is not writable", parent)


def check_output_folder(folder: Path) -> None:
    """Refuse, before any work, a folder of outputs that cannot be made or written: its
    nearest existing folder must be writable (a folder run into a read-only place loaded the
    model and failed each input in turn)."""
    existing = folder.resolve()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"output folder '{folder}': '{existing}' is not a folder", existing)
    if not os.access(existing, os.W_OK):
        raise OutputError(f"output folder '{existing}' is not writable", existing)


def _special(path: Path) -> str | None:
    """What ``path`` is where it exists and is neither a file, a folder nor a link."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return None
    kinds = {stat.S_ISFIFO: "a FIFO", stat.S_ISCHR: "a device", stat.S_ISBLK: "a device"}
    kinds[stat.S_ISSOCK] = "a socket"
    return next((name for test, name in kinds.items() if test(mode)), None)


@contextlib.contextmanager
def atomic_output(final: Path, overwrite: bool | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``final`` (same suffix, so muxers pick the same format);
    move it to ``final`` on success, delete it on any error or interrupt.

    The file is created with the usual permissions (0666 less the umask). ``overwrite``: True
    replaces whatever is at ``final``; False never replaces anything; None (the default)
    replaces a file that was there when the block began (the caller's own check let it
    through) but never one that appeared meanwhile, such as another process's output of the
    same name: that raises OutputError, atomically (a hard link, which fails if the name is
    taken), and the other output is left as it is.
    """
    folder = final.parent
    sweep_stale_parts(folder)
    replace = os.path.lexists(final) if overwrite is None else overwrite
    tmp, fd = _create_part(folder, final)
    try:
        yield tmp
        _usual_mode(tmp)
        _commit(tmp, final, replace)
    except BaseException as exc:
        gone = isinstance(exc, OSError) and not folder.is_dir()
        error = None if gone else _write_error(exc, folder, tmp, final)
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if gone:  # the error named our temporary file
            raise OutputError(
                f"the folder of output '{final}' went away while it was written", final
            ) from exc
        if error is not None:
            raise error from exc
        raise
    finally:
        os.close(fd)  # releases the lock


FULL_DISK = 16 * 2**20  # bytes free under which a writer's unexplained failure is a full disk
# what writers raise when a write fails, without an errno: torch.save ("unexpected pos",
# "basic_ios::clear"), NumPy's tofile ("requested and"), safetensors ("I/O error")
WRITE_FAILURES = ("unexpected pos", "basic_ios::clear", "requested and", "I/O error")
_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # a full disk, quota, file-size limit


def _write_error(exc: BaseException, folder: Path, tmp: Path, final: Path) -> OSError | None:
    """The error to raise for a failed write of ``final`` (into ``tmp``), naming ``final``: an
    OSError that named the hidden temporary file, a full disk, quota or file-size limit
    anywhere in its chain, or a writer's failure without an errno
    (:data:`WRITE_FAILURES`: a full disk with under :data:`FULL_DISK` free, a file-size limit
    where one is set, else an I/O error). None: not a write's failure (ours, an interrupt, a
    bug, an OSError naming another file), raised as it is."""
    from .errors import D2NError

    if not isinstance(exc, Exception) or isinstance(exc, D2NError):
        return None
    if isinstance(exc, OSError) and exc.filename:  # one that names another file says it all
        return OSError(exc.errno, exc.strerror, str(final)) if exc.filename == str(tmp) else None
    chain: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and len(chain) < 8:
        chain.append(link)
        link = link.__cause__ or link.__context__
    said = next(((e, c) for e in chain for c in _FULL if _says(e, c)), None)
    if said is not None:  # one naming another file (a cache, a temporary folder) is not ours
        named, code = getattr(said[0], "filename", None), said[1]
        return None if named and named != str(tmp) else OSError(code, os.strerror(code), str(final))
    failed = next((e for e in chain for sign in WRITE_FAILURES if sign in str(e)), None)
    if failed is None:
        return None
    if _nearly_full(folder):
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(final))
    if _at_size_limit(tmp):
        return OSError(errno.EFBIG, os.strerror(errno.EFBIG), str(final))
    reason = " ".join(str(failed).split())[:160]
    return OSError(errno.EIO, f"could not be written ({reason})", str(final))


def _nearly_full(folder: Path) -> bool:
    try:
        stat = os.statvfs(folder)
    except (OSError, AttributeError):  # no statvfs on Windows
        return False
    return stat.f_bavail * stat.f_frsize < FULL_DISK


def _at_size_limit(tmp: Path) -> bool:
    """Whether ``tmp`` stopped at this process's file-size limit (``ulimit -f``)."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        return soft != resource.RLIM_INFINITY and tmp.stat().st_size >= soft - 2**16
    except (ImportError, OSError, ValueError):
        return False


def _says(exc: BaseException, code: int) -> bool:
    """An OSError of errno ``code``, or an error that quotes one (safetensors: '... No space
    left on device (os error 28)')."""
    if isinstance(exc, OSError) and exc.errno == code:
        return True
    return os.strerror(code) in str(exc)


def _create_part(folder: Path, final: Path) -> tuple[Path, int]:
    """A new empty temporary file for ``final``, locked; its path and the locking descriptor."""
    for _ in range(100):
        tmp = (
            folder / f".{final.stem[:100]}.{os.getpid()}-{secrets.token_hex(4)}.part{final.suffix}"
        )
        try:
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            continue
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        return tmp, fd
    raise OutputError(f"cannot create a temporary file beside '{final}'", final)


def _usual_mode(path: Path) -> None:
    """0666 less the umask, whatever the writer did: some write a file of their own and rename
    it over the temporary path (safetensors' ``save_file`` leaves 0600). Best effort: FAT and
    exFAT (a dashcam's card) refuse to drop the x bits they report, and the output still counts."""
    mode = 0o666 & ~current_umask()
    with contextlib.suppress(OSError):
        if path.stat().st_mode & 0o777 != mode:
            os.chmod(path, mode)


def current_umask() -> int:
    """The process's umask, read without changing it where Linux allows."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    old = os.umask(0o022)
    os.umask(old)
    return old


def _commit(tmp: Path, final: Path, replace: bool) -> None:
    if replace:
        os.replace(tmp, final)
        return
    taken = OutputError(
        f"output '{final}' appeared while this run was writing it (another process writing the "
        "same name?); it was left as it is and nothing was written",
        final,
    )
    try:
        os.link(tmp, final)
    except FileExistsError:
        raise taken from None
    except OSError:  # a file system without hard links: check, then rename
        if os.path.lexists(final):
            raise taken from None
        os.replace(tmp, final)
        return
    tmp.unlink()


def output_name(path: Path) -> Path:
    """The output a temporary path of :func:`atomic_output` stands for (``.clip.PID-XX.part.mp4``
    -> ``clip.mp4``), for messages and format checks; other paths as they are."""
    match = _PART.match(path.name)
    if not match:
        return path
    stem = path.name[1 : match.start(1) - 1]
    return path.with_name(stem + (match.group(2) or ""))


def sweep_stale_parts(folder: Path, again: bool = False) -> int:
    """Delete the temporary files that killed d2nvideo processes left in ``folder`` (their
    writer is gone and they are unlocked); return how many. Once per folder per process,
    unless ``again`` (a worker process just died there)."""
    key = os.path.abspath(folder)
    if key in _SWEPT and not again:
        return 0
    _SWEPT.add(key)
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    removed = 0
    for name in names:
        match = _PART.match(name)
        if match and _stale(folder / name, int(match.group(1))):
            with contextlib.suppress(OSError):
                (folder / name).unlink()
                removed += 1
    return removed


def _stale(path: Path, pid: int) -> bool:
    if pid == os.getpid() or _alive(pid):
        return False
    if fcntl is None:
        return True
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # locked: a writer in another pid namespace is still at work
    finally:
        os.close(fd)
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def make_folder(folder: Path) -> None:
    """``folder.mkdir(parents=True, exist_ok=True)``, a link to nothing on the way named."""
    refuse_dangling_links(folder)
    folder.mkdir(parents=True, exist_ok=True)


def refuse_dangling_links(folder: Path) -> None:
    """An OutputError naming a link to nothing among ``folder`` and its parents: its target is
    not made for it (``mkdir -p`` refuses it too), and the error said only 'File exists' or
    'No such file or directory'."""
    for path in (*reversed(folder.parents), folder):
        if path.is_symlink() and not path.exists():
            target = os.readlink(path)
            nowhere = "which loops back" if _loops(path) else "which does not exist"
            raise OutputError(f"'{path}' is a link to '{target}', {nowhere}", path)


def _loops(path: Path) -> bool:
    try:
        os.stat(path)
    except OSError as exc:
        return exc.errno == errno.ELOOP
    return False


def make_new_folders(folder: Path) -> list[Path]:
    """Make ``folder`` and its missing parents; those this call made, outermost first (one
    that another process made meanwhile is not)."""
    refuse_dangling_links(folder)
    made = []
    for path in reversed([p for p in (folder, *folder.parents) if not os.path.lexists(p)]):
        try:
            path.mkdir()
            made.append(path)
        except FileExistsError:
            pass
    folder.mkdir(parents=True, exist_ok=True)  # what is in the way says so here
    return made
