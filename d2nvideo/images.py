"""Still images and folders of them: read, write atomically, translate with names mirrored."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .errors import InputError
from .fileio import atomic_output, files_under


def _quiet_opencv() -> None:
    """A broken image is our one line, not OpenCV's warnings too; OPENCV_LOG_LEVEL, if set,
    is the user's choice and kept."""
    if "OPENCV_LOG_LEVEL" in os.environ:
        return
    with contextlib.suppress(AttributeError, ImportError):  # builds without cv2.utils.logging
        from cv2.utils import logging as cv_logging

        cv_logging.setLogLevel(cv_logging.LOG_LEVEL_SILENT)


_quiet_opencv()
log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
MAX_PIXELS = 2**28  # 16384 x 16384: larger images are refused before decoding


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def list_images(root: Path) -> list[Path]:
    """Every image file under ``root``, recursively, in sorted order (linked folders
    followed, see :func:`files_under`)."""
    return [path for path in files_under(root) if is_image(path)]


def read_image(path: Path, reduce: int = 1, damaged: list[Path] | None = None) -> np.ndarray:
    """``(H, W, 3) uint8`` RGB. ``reduce`` in (1, 2, 4, 8) decodes JPEGs at that fraction of
    the size, which is several times faster. Raises InputError when unreadable; ``damaged``
    gets ``path`` where data was missing (decoded grey)."""
    flags = {
        1: cv2.IMREAD_COLOR,
        2: cv2.IMREAD_REDUCED_COLOR_2,
        4: cv2.IMREAD_REDUCED_COLOR_4,
        8: cv2.IMREAD_REDUCED_COLOR_8,
    }[reduce]
    check_image_size(path)
    data = np.fromfile(str(path), dtype=np.uint8) if path.is_file() else None
    with _decoder_messages() as said:
        try:
            image = cv2.imdecode(data, flags) if data is not None and data.size else None
            if image is None and data is not None and data[:3].tobytes() == b"\xff\xd8\xff":
                image = _jpeg_cut_short(path, flags)
        except cv2.error as exc:  # e.g. OpenCV's own pixel limit
            why = _cv_reason(exc)
            raise InputError(f"'{path}' is not a readable image ({why})", path) from exc
    if data is None:  # gone (a listed file deleted since), a folder, a pipe: it said "empty"
        raise InputError(f"'{path}' {_not_a_file(path)}", path)
    if image is None:
        why = said[-1].removeprefix("libpng error: ") if said else _unsaid_reason(data)
        raise InputError(f"'{path}' is not a readable image ({why})", path)
    if _warn_damaged(path, said) and damaged is not None:
        damaged.append(path)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _not_a_file(path: Path) -> str:
    if path.is_dir():
        return "is a folder, not an image"
    return "is not a regular file" if os.path.lexists(path) else "does not exist"


_SIGNATURES = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG", b"BM": "BMP"}


def _unsaid_reason(data: np.ndarray | None) -> str:
    """Why an image did not decode where its decoder said nothing (a file cut short in its
    header, or no image at all)."""
    if data is None or not data.size:
        return "the file is empty"
    head = data[:8].tobytes()
    kind = next((k for sig, k in _SIGNATURES.items() if head.startswith(sig)), None)
    if kind is None:
        return "not an image format OpenCV reads"
    return f"its {kind} data is damaged or cut short"


def _jpeg_cut_short(path: Path, flags: int) -> np.ndarray | None:
    """A JPEG whose data ends early, which OpenCV 5 decodes from a file (grey where the data
    is missing; libjpeg says "Premature end of JPEG file") but refuses from memory. A path
    OpenCV cannot open (not ASCII, on Windows) stays refused."""
    try:
        return cv2.imread(str(path), flags)
    except cv2.error:
        return None


_DECODER_LOCK = threading.Lock()
_CAPTURE: dict[int, Any] = {}  # this process's file for the decoders' lines (a fork makes its own)


@contextlib.contextmanager
def _decoder_messages() -> Iterator[list[str]]:
    """What libpng and libjpeg write to stderr themselves while OpenCV decodes ("libpng error:
    PNG input buffer is incomplete", twice, before our line; "Corrupt JPEG data: premature
    end of data segment" for an image accepted with its missing part grey): caught (fd 2 goes
    to a file for the call) and returned, so that a damaged image is one line of ours. Where
    there is no stderr or no temporary file, nothing is caught."""
    said: list[str] = []
    with _DECODER_LOCK:
        try:
            tmp = _capture_file()
            saved = os.dup(2)
        except OSError:
            yield said
            return
        try:
            os.dup2(tmp.fileno(), 2)
            yield said
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            said += _decoder_lines(tmp.read())
            tmp.seek(0)
            tmp.truncate()


def _capture_file() -> Any:
    pid = os.getpid()
    if pid not in _CAPTURE:
        _CAPTURE.clear()  # the parent's, inherited through a fork: its own to use
        _CAPTURE[pid] = tempfile.TemporaryFile()  # noqa: SIM115 (kept open for the process)
    return _CAPTURE[pid]


# libpng's and libjpeg's own lines; anything else written meanwhile (another thread's progress
# bar or warning) goes on to stderr as it was
_DECODER_SAYS = re.compile(
    rb"^(libpng (error|warning)|Corrupt JPEG|Premature end of JPEG|Not a JPEG|Invalid JPEG|"
    rb"Bogus |Unsupported JPEG|JPEG datastream|Improper call to JPEG|Wrong JPEG)"
)
# of those, what says a JPEG lacks data that it was taken without ("extraneous bytes before
# marker" is a harmless quirk of some cameras; libpng's warnings, about colour profiles or
# ancillary chunks, leave the picture whole)
_MISSING_DATA = ("Corrupt JPEG data: premature end", "Premature end of JPEG")


def _decoder_lines(captured: bytes) -> list[str]:
    ours: list[bytes] = []
    others: list[bytes] = []
    for line in captured.splitlines(keepends=True):
        (ours if _DECODER_SAYS.match(line) else others).append(line)
    if others:
        with contextlib.suppress(OSError):
            os.write(2, b"".join(others))
    return [line.decode("utf-8", "replace").strip() for line in ours]


def _warn_damaged(path: Path, said: list[str]) -> bool:
    """Once a process: a JPEG taken with data missing (its missing part is grey). Whether it
    is one."""
    missing = [line for line in said if line.startswith(_MISSING_DATA)]
    if missing and "damaged" not in _WARNED:
        _WARNED.add("damaged")
        log.warning(
            "'%s' is damaged (%s): what could not be decoded is grey (other such images are "
            "not named)",
            path,
            missing[0],
        )
    return bool(missing)


def _cv_reason(exc: Exception) -> str:
    """The last words of an OpenCV error (its first line names source files)."""
    text = " ".join(str(exc).split())
    return text.rsplit(") ", 1)[-1][:160] if ") " in text else text[:160]


def check_image_size(path: Path) -> None:
    """Refuse an image whose header claims more than MAX_PIXELS before decoding it (a 60000 x
    60000 PNG would need 10 GB): InputError naming its size."""
    size = jpeg_size(path) or png_size(path)
    if size is not None and size[0] * size[1] > MAX_PIXELS:
        h, w = size
        raise InputError(
            f"'{path}' is {w}x{h} pixels, larger than d2nvideo reads "
            f"({MAX_PIXELS / 1e6:.0f} megapixels)",
            path,
        )


def png_size(path: Path) -> tuple[int, int] | None:
    """(height, width) from a PNG's IHDR chunk without decoding; None for other files."""
    header = png_header(path)
    return None if header is None else header[:2]


def png_header(path: Path) -> tuple[int, int, int, int] | None:
    """(height, width, bit depth, colour type) from a PNG's IHDR chunk; None for other files."""
    if not path.is_file():
        return None
    try:
        with path.open("rb") as fh:
            head = fh.read(26)
    except OSError:
        return None
    if len(head) < 26 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    h, w = int.from_bytes(head[20:24], "big"), int.from_bytes(head[16:20], "big")
    return h, w, head[24], head[25]


_WARNED: set[str] = set()  # what warn_if_lossy has said in this process


def warn_if_lossy(path: Path) -> None:
    """For an image about to be translated: a PNG with transparency (an alpha channel, or a
    tRNS chunk) or 16 bits a channel is read as 8-bit RGB, so its translation has neither.
    Each is said once in a process (a ``convert --jobs`` worker is a process)."""
    header = png_header(path)
    if header is None or {"alpha", "16-bit"} <= _WARNED:
        return
    _, _, depth, colour = header
    if "alpha" not in _WARNED and (colour in (4, 6) or _png_has_trns(path)):
        _WARNED.add("alpha")
        log.warning(
            "'%s' has transparency: images are translated as RGB without it, so the "
            "output has none (other such inputs are not named)",
            path,
        )
    if "16-bit" not in _WARNED and depth == 16:
        _WARNED.add("16-bit")
        log.warning(
            "'%s' has 16 bits a channel: images are translated at 8, so the output has 8 "
            "(other such inputs are not named)",
            path,
        )


def _png_has_trns(path: Path) -> bool:
    """Whether a PNG has a tRNS chunk (transparency of a palette or one colour) before its
    image data."""
    try:
        with path.open("rb") as fh:
            fh.seek(8)
            while chunk := fh.read(8):
                if len(chunk) < 8 or chunk[4:8] in (b"IDAT", b"IEND"):
                    return False
                if chunk[4:8] == b"tRNS":
                    return True
                fh.seek(int.from_bytes(chunk[:4], "big") + 4, os.SEEK_CUR)  # data and CRC
    except OSError:
        return False
    return False


def jpeg_size(path: Path) -> tuple[int, int] | None:
    """(height, width) from a JPEG's frame header without decoding; None for other files."""
    if path.suffix.lower() not in (".jpg", ".jpeg") or not path.is_file():
        return None
    try:
        with path.open("rb") as fh:
            data = fh.read(65536)
    except OSError:
        return None
    i = 2
    while i + 9 < len(data) and data[i] == 0xFF:
        marker, length = data[i + 1], int.from_bytes(data[i + 2 : i + 4], "big")
        if marker in (0xC0, 0xC1, 0xC2):  # start of frame: baseline, extended, progressive
            return int.from_bytes(data[i + 5 : i + 7], "big"), int.from_bytes(
                data[i + 7 : i + 9], "big"
            )
        i += 2 + length
    return None


def read_image_reduced(path: Path, min_side: int = 0, min_width: int = 0) -> np.ndarray:
    """Like :func:`read_image`, decoding a large JPEG at 1/2, 1/4 or 1/8 size when the result
    keeps its shorter side at least ``min_side`` and its width at least ``min_width``."""
    size = jpeg_size(path)
    reduce = 1
    if size is not None:
        h, w = size
        while (
            reduce < 8 and min(h, w) // (reduce * 2) >= min_side and w // (reduce * 2) >= min_width
        ):
            reduce *= 2
    return read_image(path, reduce)


def fingerprint(image: np.ndarray) -> str:
    """A 64-bit difference hash of ``(H, W, 3) uint8`` (Krawetz's dHash) as 16 hex digits: the
    signs of horizontal steps on a 9x8 grey thumbnail. Resizing, recompression and small
    tone changes leave it within a few bits, so it finds the same picture in another file."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    thumb = cv2.resize(grey, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (thumb[:, 1:] > thumb[:, :-1]).flatten()
    return f"{int(''.join('1' if b else '0' for b in bits), 2):016x}"


def fingerprint_distance(a: str, b: str) -> int:
    """Differing bits between two :func:`fingerprint` values (0-64)."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def write_image(path: Path, image: np.ndarray, quality: int = 95) -> None:
    """Write ``(H, W, 3) uint8`` RGB atomically; format from the suffix."""
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if path.suffix.lower() in (".jpg", ".jpeg") else []
    ok, data = cv2.imencode(path.suffix, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise InputError(f"cannot encode an image as '{path.suffix}'", path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # NumPy's tofile lost a failed last write (a full disk): a Python file's close says it
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        f.write(data.tobytes())
