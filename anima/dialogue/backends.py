"""Build the configured :class:`~anima.dialogue.brain.Brain` by backend name.

Backends are imported only when chosen, so a deployment on an OpenAI-compatible server never
loads llama.cpp and the embedded one never needs network settings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from anima.dialogue.brain import Brain

if TYPE_CHECKING:
    from anima.config import BrainSettings


def _gguf(settings: BrainSettings) -> Brain:
    from anima.dialogue.gguf_backend import GGUFBrain

    return GGUFBrain.from_settings(settings)


def _openai(settings: BrainSettings) -> Brain:
    from anima.dialogue.openai_backend import OpenAIBrain

    return OpenAIBrain.from_settings(settings)


def _kb(settings: BrainSettings) -> Brain:
    # No model: the dialogue agent answers from its own knowledge base (knowledge.dir).
    from anima.dialogue.kb_brain import KnowledgeBrain

    return KnowledgeBrain()


# name -> factory. Register further backends here (one line each).
BACKENDS: dict[str, Callable[[BrainSettings], Brain]] = {
    "gguf": _gguf,
    "openai": _openai,
    "kb": _kb,
    # -- more backends --
}


def load_brain(settings: BrainSettings) -> Brain:
    """The brain named by ``settings.backend`` ("gguf" by default), ready to stream.

    Raises ValueError for an unknown name, :class:`~anima.models.ModelNotFound` for a missing
    model file and :class:`~anima.dialogue.brain.BrainError` for one that cannot be loaded.
    """
    try:
        factory = BACKENDS[settings.backend]
    except KeyError:
        known = ", ".join(sorted(BACKENDS))
        raise ValueError(f"unknown brain backend {settings.backend!r} (known: {known})") from None
    return factory(settings)
