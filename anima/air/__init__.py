"""On air: the constant-fps loop that both a conversation and a live show play through.

- :mod:`anima.air.program`: what goes on air next, utterances being synthesised and pauses;
- :mod:`anima.air.fill`: filling an utterance from the speaking pipeline's frames;
- :mod:`anima.air.loop`: the :class:`~anima.air.loop.Broadcaster`, one video frame and its
  audio every 1/fps seconds, idle fill, integer timestamps, cutting;
- :mod:`anima.air.actions`: head gestures (``[nod]``…) played on the loop's frames.

The engine (:mod:`anima.engine.output`, :mod:`anima.engine.drive`) and the live show
(:mod:`anima.live.show`) subclass or drive the loop; this package imports neither of them.
"""
