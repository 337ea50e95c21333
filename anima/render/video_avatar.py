"""An avatar from a short video: real frames replayed as the idle, the mouth drawn on each.

:func:`prepare_video` reads 5-60 s of one person facing the camera, finds the face on every
frame (landmarks per frame, once), crops one fixed square round all of them (so the real head
motion, blinks and breathing stay in the picture) and picks where the idle loops: an end frame
that matches a start frame closely, or, when no pair is close enough, forwards then backwards
(ping-pong). Frames are kept as JPEG bytes (a minute is ~70 MB, not gigabytes of pixels).

:class:`VideoAnimator` has :class:`~anima.render.animator.FaceAnimator`'s ``render`` signature.
Each frame of the clip is aligned to the reference frame by a similarity transform fitted on
stable landmarks, the photo-mode mouth rig of the reference (jaw, lips, teeth, tongue) is
applied to the aligned frame, and the mouth region goes back onto the clip frame through the
inverse transform with a feathered edge. At rest the clip frame is shown as it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from anima.config import RenderSettings
from anima.frames import MouthShape
from anima.render.avatar import WORK_PAD, Avatar, AvatarError, AvatarStore, Consent
from anima.render.face import FaceDetector, face_width, shared_detector

if TYPE_CHECKING:
    from anima.render.animator import FaceAnimator

MIN_SECONDS, MAX_SECONDS = 5.0, 60.0
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi"})
FPS = 25
# Landmarks that move little with expression: eye corners, nose bridge and tip, face sides.
STABLE = (33, 133, 263, 362, 168, 6, 197, 1, 234, 454, 10)


@dataclass
class VideoAvatar:
    """The clip's frames (JPEG bytes, working size), landmarks per frame and its loop."""

    name: str
    frames: list[bytes]
    landmarks: np.ndarray  # (n, 478, 2) in working-image pixels
    loop: tuple[int, int, bool]  # (start, end, ping_pong)
    work_size: int

    def frame(self, k: int) -> np.ndarray:
        """Clip frame ``k`` as RGB."""
        bgr = cv2.imdecode(np.frombuffer(self.frames[k], np.uint8), cv2.IMREAD_COLOR)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def reference(self) -> Avatar:
        """The loop's first frame as a photo avatar (the rig is built on it)."""
        k = self.loop[0]
        return Avatar(self.name, self.frame(k), self.landmarks[k].astype(np.float32))

    def clip_index(self, index: int) -> int:
        """The clip frame shown at output frame ``index`` of the endless idle."""
        start, end, pingpong = self.loop
        span = end - start
        if span <= 0:
            return start
        if not pingpong:
            return start + index % span  # end is exclusive: end-1 -> start is the seam
        k = index % (2 * span)
        return start + (k if k <= span else 2 * span - k)

    def save(self, folder: Path) -> None:
        """Write the clip data into ``folder`` (the reference avatar is stored beside it)."""
        np.savez(
            folder / "clip.npz",
            frames=np.array(self.frames, dtype=object),
            landmarks=self.landmarks.astype(np.float32),
        )
        meta = {"loop": list(self.loop), "work_size": self.work_size, "fps": FPS}
        (folder / "clip.json").write_text(json.dumps(meta), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> VideoAvatar:
        """Read what :meth:`save` wrote."""
        try:
            meta = json.loads((folder / "clip.json").read_text(encoding="utf-8"))
            data = np.load(folder / "clip.npz", allow_pickle=True)
            frames = [bytes(b) for b in data["frames"]]
            lm = np.asarray(data["landmarks"])
        except (OSError, ValueError, KeyError) as exc:
            raise AvatarError(f"video avatar in {folder} is missing or damaged: {exc}") from exc
        s, e, p = meta["loop"]
        return cls(folder.name, frames, lm, (int(s), int(e), bool(p)), int(meta["work_size"]))


def read_clip(path: Path) -> list[np.ndarray]:
    """RGB frames of ``path`` resampled to 25 fps; one clear line for a bad file or length."""
    import av

    try:
        container = av.open(str(path))
    except (OSError, av.error.FFmpegError) as exc:
        raise AvatarError(f"{path} is not a readable video ({exc.__class__.__name__})") from exc
    with container:
        if not container.streams.video:
            raise AvatarError(f"{path} has no video stream")
        stream = container.streams.video[0]
        declared = float(container.duration / 1e6) if container.duration else None
        if declared is not None and declared > MAX_SECONDS * 1.02:
            raise AvatarError(f"{path} is {declared:.1f} s long; a clip must be 5-60 s")
        frames: list[np.ndarray] = []
        next_t = 0.0
        try:
            for frame in container.decode(stream):
                t = float(frame.time) if frame.time is not None else next_t
                if t > MAX_SECONDS * 1.02:
                    raise AvatarError(f"{path} is longer than 60 s; a clip must be 5-60 s")
                if t + 1e-6 < next_t:
                    continue
                img = frame.to_ndarray(format="rgb24")
                while next_t <= t + 1e-6:
                    frames.append(img)
                    next_t += 1.0 / FPS
        except av.error.FFmpegError as exc:
            raise AvatarError(
                f"{path} is damaged: decoding failed after {len(frames)} frames"
            ) from exc
    seconds = len(frames) / FPS
    if seconds < MIN_SECONDS:
        raise AvatarError(f"{path} is {seconds:.1f} s long; a clip must be 5-60 s")
    return frames


def prepare_video(
    frames: list[np.ndarray],
    name: str,
    *,
    size: int = 512,
    margin: float = 0.5,
    detector: FaceDetector | None = None,
) -> VideoAvatar:
    """Landmarks on every frame, one fixed crop, JPEG frames and the loop of a clip."""
    detector = detector or shared_detector()
    raw: list[np.ndarray] = []
    for k, img in enumerate(frames):
        faces = detector.detect(img)
        t = k / FPS
        if not faces:
            what = "no face found in the clip" if k == 0 else f"the face is lost at {t:.1f} s"
            raise AvatarError(f"{what}; use a clip of one person facing the camera throughout")
        if len(faces) > 1 and face_width(faces[1]) > 0.4 * face_width(faces[0]):
            raise AvatarError(f"several faces in the clip (at {t:.1f} s); it must show one person")
        lm = faces[0]
        h, w = img.shape[:2]
        if lm[:, 0].min() < 0 or lm[:, 1].min() < 0 or lm[:, 0].max() > w or lm[:, 1].max() > h:
            raise AvatarError(f"the face leaves the frame at {t:.1f} s; keep it fully in view")
        raw.append(lm)
    pts = np.stack(raw)
    # One square round every frame's face, so the head moves inside a still frame.
    top, bottom = float(pts[:, 10, 1].min()), float(pts[:, 152, 1].max())
    width = float(max(face_width(p) for p in raw))
    cx = float(pts[:, :, 0].mean())
    cy = (top + bottom) / 2
    work = round(size * WORK_PAD)
    scale = work / (max(width, bottom - top) * (1 + 2 * margin) * WORK_PAD)
    m = np.array([[scale, 0, work / 2 - cx * scale], [0, scale, work / 2 - cy * scale]], np.float32)
    jpegs, small = [], []
    for img in frames:
        crop = cv2.warpAffine(
            img, m, (work, work), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE
        )
        ok, buf = cv2.imencode(
            ".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92]
        )
        jpegs.append(buf.tobytes())
        small.append(
            cv2.resize(
                cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), (48, 48), interpolation=cv2.INTER_AREA
            )
        )
    landmarks = pts @ m[:, :2].T + m[:, 2]
    return VideoAvatar(name, jpegs, landmarks.astype(np.float32), find_loop(np.stack(small)), work)


def frame_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two (small, grey) frames."""
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


def find_loop(small: np.ndarray) -> tuple[int, int, bool]:
    """(start, end, ping_pong): the seam end-1 -> start that best matches, else ping-pong.

    A jump is accepted when it differs less than the clip's median frame-to-frame change (so
    the seam is no bigger than an ordinary frame step) and the loop keeps most of the clip.
    """
    n = len(small)
    steps = [frame_difference(small[k], small[k + 1]) for k in range(n - 1)]
    median = float(np.median(steps)) if steps else 0.0
    best, pair = np.inf, (0, n)
    for start in range(0, max(1, n // 4)):
        for end in range(max(start + n // 2, start + 2), n + 1):
            # Playing end-1 then start: the seam is their difference.
            d = frame_difference(small[end - 1], small[start])
            if d < best:
                best, pair = d, (start, end)
    if best < median:
        return pair[0], pair[1], False
    return 0, n - 1, True


class VideoAnimator:
    """Renders frames of a video avatar; same ``render`` as :class:`FaceAnimator`."""

    def __init__(
        self, video: VideoAvatar, *, size: int = 512, fps: int = FPS, seed: int | None = None
    ) -> None:
        from anima.render.animator import FaceAnimator

        self.video = video
        self.size = size
        self.fps = fps
        ref = video.reference()
        self._face = FaceAnimator(ref, size=size, fps=fps, seed=seed, head_motion=0.0)
        self.avatar = ref
        self.idle = self._face.idle  # unused: the clip's own frames are the idle
        self._ref_lm = ref.landmarks
        r = self._face.rig.mouth
        self._box = (r.x0, r.y0, r.x1, r.y1)
        feather = np.zeros((video.work_size, video.work_size), np.float32)
        pad = max(4, (r.x1 - r.x0) // 12)
        feather[r.y0 + pad : r.y1 - pad, r.x0 + pad : r.x1 - pad] = 1.0
        self._feather = cv2.GaussianBlur(feather, (0, 0), pad / 2)
        self._aligned = ref.image.copy()  # the reference frame outside the rig's box

    def render(
        self, index: int, shape: MouthShape, speaking: bool = False, emotion: str | None = None
    ) -> np.ndarray:
        """The RGB frame for output frame ``index``: clip frame with the mouth ``shape``."""
        k = self.video.clip_index(index)
        frame = self.video.frame(k)
        work = self.video.work_size
        if speaking or float(np.abs(shape.as_array()[[0, 2, 3]]).max()) > 0.05:
            lm = self.video.landmarks[k]
            m, _ = cv2.estimateAffinePartial2D(lm[list(STABLE)], self._ref_lm[list(STABLE)])
            if m is not None:
                frame = self._mouth_onto(frame, m, shape)
        shift = (work - self.size) // 2
        return np.ascontiguousarray(frame[shift : shift + self.size, shift : shift + self.size])

    def _mouth_onto(self, frame: np.ndarray, m: np.ndarray, shape: MouthShape) -> np.ndarray:
        """Draw the mouth on ``frame``; ``m`` maps the frame onto the reference face.

        Only the rig's box is warped each way (not the whole frame), which keeps a frame cheap.
        """
        work = self.video.work_size
        x0, y0, x1, y1 = self._box
        pad = 8
        bx0, by0 = max(0, x0 - pad), max(0, y0 - pad)
        bx1, by1 = min(work, x1 + pad), min(work, y1 + pad)
        aligned = self._aligned
        aligned[by0:by1, bx0:bx1] = _warp_rect(frame, m, (bx0, by0, bx1, by1))
        mouth = self._face.mouth_on(aligned, shape, (bx0, by0, bx1, by1))
        inv = cv2.invertAffineTransform(m)
        corners = np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]], np.float64)
        c = corners @ inv[:, :2].T + inv[:, 2]
        fx0, fy0 = np.maximum(np.floor(c.min(0)).astype(int), 0)
        fx1, fy1 = np.minimum(np.ceil(c.max(0)).astype(int) + 1, work)
        rect = (int(fx0), int(fy0), int(fx1), int(fy1))
        back = _warp_rect(mouth, inv, rect).astype(np.float32)
        a = _warp_rect(self._feather, inv, rect)[..., None]
        out = frame.copy()
        roi = out[fy0:fy1, fx0:fx1].astype(np.float32)
        out[fy0:fy1, fx0:fx1] = (roi * (1 - a) + back * a).astype(np.uint8)
        return out


def _warp_rect(src: np.ndarray, m: np.ndarray, rect: tuple[int, int, int, int]) -> np.ndarray:
    """The part ``rect`` (x0, y0, x1, y1) of ``src`` warped by the affine ``m``."""
    x0, y0, x1, y1 = rect
    shifted = m.copy()
    shifted[:, 2] -= (x0, y0)
    return cv2.warpAffine(src, shifted, (x1 - x0, y1 - y0), borderMode=cv2.BORDER_REPLICATE)


def add_video_avatar(
    store: AvatarStore,
    path: Path,
    name: str,
    *,
    size: int,
    margin: float,
    replace: bool = False,
    consent: Consent | None = None,
) -> tuple[VideoAvatar, Path]:
    """``anima avatar add clip.mp4``: prepare the clip and store it (reference photo + clip)."""
    video = prepare_video(read_clip(path), name, size=size, margin=margin)
    ref = video.reference()
    ref.consent = consent
    ref.notes.append(
        f"video avatar: {len(video.frames) / FPS:.1f} s, "
        + ("ping-pong idle" if video.loop[2] else f"loop {video.loop[0]}-{video.loop[1]}")
    )
    folder = store.add(ref, replace=replace)
    video.save(folder)
    return video, folder


def animator_for(avatar: Avatar, render: RenderSettings) -> FaceAnimator | VideoAnimator:
    """The animator of ``avatar``: clip frames for a video avatar, the photo rig otherwise."""
    from anima.render.animator import FaceAnimator

    if avatar.clip_folder is None:
        return FaceAnimator.from_settings(avatar, render)
    video = VideoAvatar.load(avatar.clip_folder)
    return VideoAnimator(video, size=render.size, fps=render.fps, seed=render.seed)
