"""An avatar made from one photo: validate it, find the face, crop, and keep what rendering needs.

:func:`read_photo` enforces byte and pixel limits before decoding the image, so a huge file
or a decompression bomb is refused cheaply, then decodes on a worker thread under a wall-clock
budget (``decode_timeout``); :func:`read_photo_async` does the same without blocking the event
loop. :func:`prepare_avatar` finds the face (the largest
if there are several), crops a square around it with margin, and re-detects landmarks on the
crop. :class:`AvatarStore` keeps prepared avatars on disk so sessions start fast.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import re
import shutil
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from anima.render.face import FaceDetector, face_width, shared_detector

# Extra border around the output crop so idle head motion never shows an edge.
WORK_PAD = 1.1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_FORMAT_VERSION = 1


class AvatarError(ValueError):
    """The photo cannot become an avatar; the message says why in one line."""


@dataclass(frozen=True)
class PhotoLimits:
    """Limits checked before a photo is decoded."""

    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000
    min_face_pixels: int = 80
    decode_timeout: float | None = 60.0  # wall-clock seconds for one decode; None: no limit


@dataclass(frozen=True)
class Consent:
    """Who attested that the pictured person agreed to this avatar, and when (UTC, ISO 8601)."""

    by: str
    at: str

    @classmethod
    def now(cls, by: str) -> Consent:
        """A consent attested by ``by`` at the current time."""
        from datetime import UTC, datetime

        by = " ".join(str(by).split())
        if not by:
            raise AvatarError("--consent-by needs the name of the person attesting consent")
        return cls(by[:200], datetime.now(UTC).isoformat(timespec="seconds"))


@dataclass
class Avatar:
    """A prepared face: the working image (RGB, square) and its 478 landmarks in that image.

    The working image is ``WORK_PAD`` times the output size, so head motion has a margin.
    """

    name: str
    image: np.ndarray
    landmarks: np.ndarray
    notes: list[str] = field(default_factory=list)
    consent: Consent | None = None  # None: nobody attested the likeness may be used
    clip_folder: Path | None = None  # a video avatar's folder (its frames live there)

    @property
    def work_size(self) -> int:
        """Side of the square working image in pixels."""
        return int(self.image.shape[0])

    def save(self, folder: Path) -> None:
        """Write the avatar into ``folder`` (created if needed)."""
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(self.image).save(folder / "face.png")
        np.save(folder / "landmarks.npy", self.landmarks.astype(np.float32))
        meta = {"version": _FORMAT_VERSION, "name": self.name, "notes": self.notes}
        if self.consent is not None:
            meta["consent"] = {"by": self.consent.by, "at": self.consent.at}
        (folder / "avatar.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> Avatar:
        """Read an avatar written by :meth:`save`."""
        try:
            meta = json.loads((folder / "avatar.json").read_text(encoding="utf-8"))
            image = np.asarray(Image.open(folder / "face.png").convert("RGB"))
            landmarks = np.load(folder / "landmarks.npy")
        except (OSError, ValueError) as exc:
            raise AvatarError(f"avatar in {folder} is missing or damaged: {exc}") from exc
        if meta.get("version") != _FORMAT_VERSION or landmarks.shape != (478, 2):
            raise AvatarError(f"avatar in {folder} has an old format; add it again")
        c = meta.get("consent")
        consent = (
            Consent(str(c["by"]), str(c["at"]))
            if isinstance(c, dict) and c.get("by") and c.get("at")
            else None
        )
        clip = folder if (folder / "clip.json").is_file() else None
        return cls(meta["name"], image, landmarks, list(meta.get("notes", [])), consent, clip)


def read_photo(
    source: Path | bytes,
    limits: PhotoLimits = PhotoLimits(),
    *,
    decode: Callable[[bytes, PhotoLimits], np.ndarray] | None = None,
) -> np.ndarray:
    """Decode a photo to RGB uint8 after checking its size in bytes and pixels.

    The decode runs on its own daemon thread and is abandoned after ``limits.decode_timeout``
    seconds (:class:`AvatarError`): Pillow's C decoder cannot be interrupted, so a thread
    stuck in it finishes on its own, bounded by the pixel limit. ``decode`` replaces the
    decoder (tests inject a slow one).
    """
    data = _photo_bytes(source, limits)
    future = _decode_in_thread(decode or decode_photo, data, limits)
    try:
        return future.result(timeout=limits.decode_timeout)
    except concurrent.futures.TimeoutError:
        raise AvatarError(_too_slow(limits)) from None


async def read_photo_async(
    source: Path | bytes,
    limits: PhotoLimits = PhotoLimits(),
    *,
    decode: Callable[[bytes, PhotoLimits], np.ndarray] | None = None,
) -> np.ndarray:
    """:func:`read_photo` for the event loop: the loop keeps running while the photo decodes."""
    data = await asyncio.to_thread(_photo_bytes, source, limits)
    future = _decode_in_thread(decode or decode_photo, data, limits)
    try:
        async with asyncio.timeout(limits.decode_timeout):
            return await asyncio.wrap_future(future)
    except TimeoutError:
        raise AvatarError(_too_slow(limits)) from None


def _too_slow(limits: PhotoLimits) -> str:
    return f"decoding the image took over {limits.decode_timeout:g} s; it was abandoned"


def _decode_in_thread(
    decode: Callable[[bytes, PhotoLimits], np.ndarray], data: bytes, limits: PhotoLimits
) -> concurrent.futures.Future[np.ndarray]:
    # A fresh daemon thread, not a pool: a decode that never returns must not take a pool
    # worker (or the interpreter's exit) with it.
    future: concurrent.futures.Future[np.ndarray] = concurrent.futures.Future()

    def work() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(decode(data, limits))
        except BaseException as exc:  # handed to the waiting caller
            future.set_exception(exc)

    threading.Thread(target=work, name="anima-photo-decode", daemon=True).start()
    return future


def _photo_bytes(source: Path | bytes, limits: PhotoLimits) -> bytes:
    """The photo's bytes, refused when over ``limits.max_bytes`` (before reading a file)."""
    if isinstance(source, Path | str):
        path = Path(source)
        if not path.is_file():
            raise AvatarError(f"no such file: {path}")
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise AvatarError(
                f"{path.name} is {size / 1e6:.1f} MB; the limit is {limits.max_bytes / 1e6:.1f} MB"
            )
        data = path.read_bytes()
    else:
        data = bytes(source)
        if len(data) > limits.max_bytes:
            raise AvatarError(
                f"image is {len(data) / 1e6:.1f} MB; the limit is {limits.max_bytes / 1e6:.1f} MB"
            )
    if not data:
        raise AvatarError("the image file is empty")
    return data


def decode_photo(data: bytes, limits: PhotoLimits = PhotoLimits()) -> np.ndarray:
    """Decode photo bytes to RGB uint8: the pixel limit from the header, then the pixels."""
    too_big = f"the image has too many pixels; the limit is {limits.max_pixels:,} pixels"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(BytesIO(data))  # reads the header only
            w, h = img.size
            if w * h > limits.max_pixels:
                raise AvatarError(
                    f"image is {w}x{h} pixels; the limit is {limits.max_pixels:,} pixels"
                )
            img = ImageOps.exif_transpose(img)
            rgb = np.asarray(img.convert("RGB"))
    except AvatarError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise AvatarError(too_big) from None
    except UnidentifiedImageError:
        raise AvatarError(
            "the file is not an image anima can read (JPEG, PNG, WebP, BMP…)"
        ) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise AvatarError(f"the image is damaged: {exc}") from None
    if min(rgb.shape[:2]) < 32:
        raise AvatarError(f"image is {rgb.shape[1]}x{rgb.shape[0]} pixels, too small for a face")
    return rgb


def prepare_avatar(
    rgb: np.ndarray,
    name: str,
    *,
    size: int = 512,
    margin: float = 0.5,
    min_face_pixels: int = 80,
    detector: FaceDetector | None = None,
) -> Avatar:
    """Find the face in ``rgb`` and build an :class:`Avatar` whose output frames are ``size``²."""
    detector = detector or shared_detector()
    faces = detector.detect(rgb)
    if not faces:
        raise AvatarError(
            "no face found in the photo; use a front-facing portrait with the face clearly visible"
        )
    notes = []
    if len(faces) > 1:
        notes.append(f"{len(faces)} faces found; using the largest")
    lm = faces[0]
    width = face_width(lm)
    if width < min_face_pixels:
        raise AvatarError(
            f"the face is {width:.0f} pixels wide; it must be at least {min_face_pixels} pixels wide"
        )
    # Square crop centred a little below the eyes' midpoint, so chin and hair both fit.
    top, bottom = float(lm[10, 1]), float(lm[152, 1])
    cx = float(lm[:, 0].mean())
    cy = (top + bottom) / 2
    extent = max(width, bottom - top) * (1 + 2 * margin)
    work = round(size * WORK_PAD)
    crop_side = extent * WORK_PAD
    scale = work / crop_side
    # Affine from the photo to the working image; edges outside the photo are replicated.
    m = np.array([[scale, 0, work / 2 - cx * scale], [0, scale, work / 2 - cy * scale]], np.float32)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    image = cv2.warpAffine(rgb, m, (work, work), flags=interp, borderMode=cv2.BORDER_REPLICATE)
    moved = lm @ m[:, :2].T + m[:, 2]
    redetected = detector.detect(image)
    if redetected:
        # The crop shows the face larger, so landmarks found there are more precise.
        near = min(redetected, key=lambda p: float(np.abs(p - moved).mean()))
        if float(np.abs(near - moved).mean()) < 0.1 * work:
            moved = near
    return Avatar(name=name, image=image, landmarks=moved.astype(np.float32), notes=notes)


def sample_portrait() -> np.ndarray:
    """The built-in sample portrait (scikit-image's astronaut, public domain), RGB uint8."""
    from skimage import data

    return np.asarray(data.astronaut())


class AvatarStore:
    """Prepared avatars under one folder, one sub-folder per name."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _folder(self, name: str) -> Path:
        if not _NAME.match(name):
            raise AvatarError(
                f"invalid avatar name {name!r}: use letters, digits, '-', '_' or '.', up to 64"
            )
        return self.root / name

    def add(self, avatar: Avatar, *, replace: bool = False) -> Path:
        """Store ``avatar``; refuses to overwrite unless ``replace``. Returns its folder."""
        folder = self._folder(avatar.name)
        if folder.exists() and not replace:
            raise AvatarError(
                f"an avatar named {avatar.name!r} exists; remove it first or use --replace"
            )
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        avatar.save(tmp)  # write fully, then swap, so a crash never leaves half an avatar
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
        return folder

    def get(self, name: str) -> Avatar:
        """Load the avatar called ``name``."""
        folder = self._folder(name)
        if not (folder / "avatar.json").is_file():
            known = ", ".join(self.names()) or "none yet"
            raise AvatarError(
                f"no avatar named {name!r} (known: {known}); add it with `anima avatar add`"
            )
        return Avatar.load(folder)

    def names(self) -> list[str]:
        """Names of the stored avatars, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "avatar.json").is_file())

    def remove(self, name: str) -> None:
        """Delete the avatar called ``name``."""
        folder = self._folder(name)
        if not folder.exists():
            raise AvatarError(f"no avatar named {name!r}")
        shutil.rmtree(folder)
