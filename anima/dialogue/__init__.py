"""The brain: LLM backends, knowledge base, persona, memory and safety.

The small public API:

* :func:`build_agent` (settings -> :class:`Agent`) and :meth:`Agent.respond`, which streams
  :class:`Phrase` objects and :class:`HandoffRequested` / :class:`TurnFailed` events;
* :class:`DialogueStage`, the pipeline stage around an agent;
* :func:`load_brain` and the :class:`Brain` protocol for the language-model backends;
* :class:`Persona`, :class:`KnowledgeBase`, :class:`LongTermMemory`, :class:`AuditLog`.

Submodules are imported lazily, so importing :mod:`anima.dialogue` loads no model.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Agent": "agent",
    "HandoffRequested": "agent",
    "TurnFailed": "agent",
    "build_agent": "agent",
    "AuditLog": "audit",
    "Brain": "brain",
    "BrainError": "brain",
    "Message": "brain",
    "Phrase": "brain",
    "load_brain": "backends",
    "KnowledgeBase": "knowledge",
    "LongTermMemory": "memory",
    "Persona": "persona",
    "DialogueStage": "stage",
}

__all__ = [
    "Agent",
    "AuditLog",
    "Brain",
    "BrainError",
    "DialogueStage",
    "HandoffRequested",
    "KnowledgeBase",
    "LongTermMemory",
    "Message",
    "Persona",
    "Phrase",
    "TurnFailed",
    "build_agent",
    "load_brain",
]

if TYPE_CHECKING:
    from anima.dialogue.agent import Agent, HandoffRequested, TurnFailed, build_agent
    from anima.dialogue.audit import AuditLog
    from anima.dialogue.backends import load_brain
    from anima.dialogue.brain import Brain, BrainError, Message, Phrase
    from anima.dialogue.knowledge import KnowledgeBase
    from anima.dialogue.memory import LongTermMemory
    from anima.dialogue.persona import Persona
    from anima.dialogue.stage import DialogueStage


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'anima.dialogue' has no attribute {name!r}")
    return getattr(importlib.import_module(f"anima.dialogue.{_EXPORTS[name]}"), name)
