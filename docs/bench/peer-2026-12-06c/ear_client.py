"""The peer kit's client with an ear instead of a playout buffer (issue 22: where the gap is).

aiortc's receiver holds every incoming audio frame until four newer packets have arrived
(``JitterBuffer(capacity=16, prefetch=4)`` in ``aiortc/rtcrtpreceiver.py``): 80 ms between a
packet's arrival and the moment the kit's client counts it as heard. This runs the kit's
``bench_client.py`` unchanged except that its audio receivers release each packet the moment
it arrives, so "heard" becomes "arrived": the difference between the two clients' figures is
the client's own buffer, not the server's output path.

    python ear_client.py --questions Q.json --systems anima=URL --blocks 2 --turns 5 --out DIR
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import aiortc.rtcrtpreceiver as receiver
from aiortc.jitterbuffer import JitterBuffer, JitterFrame

KIT = Path(__file__).resolve().parents[4] / "shared" / "peer-bench" / "bench_client.py"


class ArrivalBuffer(JitterBuffer):
    """Each audio packet out as it comes in (in order; a late one dropped)."""

    def __init__(self, capacity: int, prefetch: int = 0, is_video: bool = False) -> None:
        super().__init__(capacity, prefetch, is_video)
        self._next: int | None = None

    def add(self, packet):  # noqa: ANN001, ANN201 - aiortc's signature
        """(no picture-loss request, the packet as a frame), or no frame when it is late."""
        seq = packet.sequence_number
        if self._next is not None and (seq - self._next) & 0xFFFF >= 0x8000:
            return False, None
        self._next = (seq + 1) & 0xFFFF
        return False, JitterFrame(data=packet._data, timestamp=packet.timestamp)


def buffer_for(capacity: int, prefetch: int = 0, is_video: bool = False) -> JitterBuffer:
    """aiortc's buffer for video; the arrival buffer for audio."""
    if is_video:
        return JitterBuffer(capacity, prefetch, is_video)
    return ArrivalBuffer(capacity, prefetch, is_video)


if __name__ == "__main__":
    receiver.JitterBuffer = buffer_for  # type: ignore[assignment, misc]
    sys.argv[0] = str(KIT)
    runpy.run_path(str(KIT), run_name="__main__")
