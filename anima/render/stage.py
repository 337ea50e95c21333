"""The pipeline stage that turns mouth frames into video frames."""

from __future__ import annotations

from collections.abc import AsyncIterator

from anima.frames import Frame, MouthFrame, VideoFrame
from anima.pipeline import Stage, run_blocking
from anima.render.animator import FaceAnimator


class RenderStage(Stage):
    """Renders each :class:`MouthFrame` off the event loop; audio and control frames pass by."""

    accepts = (MouthFrame,)

    def __init__(self, animator: FaceAnimator) -> None:
        self.animator = animator

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        """Yield the rendered :class:`VideoFrame` for one mouth frame."""
        assert isinstance(frame, MouthFrame)
        image = await run_blocking(
            self.animator.render, frame.index, frame.shape, frame.speaking, frame.emotion
        )
        yield VideoFrame(turn=frame.turn, image=image, index=frame.index)
