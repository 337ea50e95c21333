"""``anima chat``: talk to the configured brain and persona in the terminal.

Replies stream phrase by phrase, one line each, exactly as the TTS would receive them, with
the emotion shown as a ``[mark]`` when it is not neutral. After each reply a dim line on stderr
tells the operator how it was answered (route, sources, confidence, time to first phrase),
which is what one needs to tune a persona and a knowledge base before putting a face on it.

``anima chat --once "question"`` prints the reply on stdout and exits: 0 when answered, 1 when
the brain failed (the apology is still printed). In the conversation, ``/reset`` forgets the
conversation, ``/quit`` (or Ctrl-D) leaves.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

# Only argparse at import time: ``anima --help`` must not load the brain.
if TYPE_CHECKING:
    from rich.console import Console

    from anima.config import Settings
    from anima.dialogue.agent import Agent
    from anima.dialogue.brain import Phrase


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``chat`` sub-command's arguments."""
    chat = sub.add_parser("chat", help="talk to the brain and persona in the terminal")
    chat.add_argument("--once", metavar="QUESTION", help="answer one question and exit")
    chat.add_argument("--kb", type=Path, help="knowledge folder (also knowledge.dir)")
    chat.add_argument("--persona", type=Path, help="persona YAML file (also persona.file)")
    chat.add_argument("--backend", help="gguf, openai or kb (no model); also brain.backend")
    chat.add_argument("--user", help="user id, for opt-in long-term memory across sessions")


def format_phrase(phrase: Phrase) -> str:
    """A phrase as shown: its text, with ``[emotion]`` in front unless neutral."""
    return phrase.text if phrase.emotion == "neutral" else f"[{phrase.emotion}] {phrase.text}"


def run(args: argparse.Namespace, settings: Settings, err: Console) -> int:
    """Run the command; user errors (bad folder, persona, backend) raise ValueError/OSError."""
    if args.kb is not None:
        if not args.kb.is_dir():
            raise ValueError(f"knowledge folder {args.kb} does not exist")
        settings.knowledge.dir = args.kb
    if args.persona is not None:
        if not args.persona.is_file():
            raise ValueError(f"persona file {args.persona} does not exist")
        settings.persona.file = args.persona
    if args.backend:
        settings.brain.backend = args.backend
    if args.once is not None and not args.once.strip():
        raise ValueError("the question is empty")
    return asyncio.run(_chat(args, settings, err))


async def _chat(args: argparse.Namespace, settings: Settings, err: Console) -> int:
    from anima.dialogue.agent import build_agent
    from anima.dialogue.brain import BrainError

    loading = None if args.once is not None else err.status("loading the brain…")
    if loading:
        loading.start()
    try:
        agent = build_agent(settings)
    except BrainError as exc:
        raise ValueError(f"cannot load the brain: {exc}") from exc
    finally:
        if loading:
            loading.stop()
    try:
        if args.once is not None:
            ok = await _turn(agent, args.once, args.user, sys.stdout, err)
            return 0 if ok else 1
        for phrase in agent.greeting(args.user):
            print(f"{agent.persona.name}> {format_phrase(phrase)}")
        err.print("[dim](/reset forgets the conversation, /quit or Ctrl-D leaves)[/dim]")
        while True:
            try:
                line = await asyncio.to_thread(input, "you> ")
            except EOFError:
                print()
                return 0
            if line.strip() in ("/quit", "/exit"):
                return 0
            if line.strip() == "/reset":
                agent.reset()
                err.print("[dim](conversation forgotten)[/dim]")
                continue
            if line.strip():
                await _turn(
                    agent, line, args.user, sys.stdout, err, prefix=f"{agent.persona.name}> "
                )
    finally:
        await agent.aclose()


async def _turn(
    agent: Agent, text: str, user: str | None, out: TextIO, err: Console, prefix: str = ""
) -> bool:
    from anima.dialogue.agent import HandoffRequested, TurnFailed
    from anima.dialogue.brain import Phrase

    ok = True
    async for event in agent.respond(text, user_id=user):
        if isinstance(event, Phrase):
            print(f"{prefix}{format_phrase(event)}", file=out, flush=True)
        elif isinstance(event, HandoffRequested):
            err.print(f"[yellow]-- hand-off to a human requested ({event.reason})[/yellow]")
        elif isinstance(event, TurnFailed):
            err.print(f"[red]-- brain error: {event.message}[/red]")
            ok = False
    turn = agent.last_turn
    if turn is not None:
        bits = [turn.route or "none"]
        if turn.intent:
            bits.append(f"intent {turn.intent}")
        if turn.sources:
            bits.append("sources " + ", ".join(turn.sources))
        if turn.confidence is not None:
            bits.append(f"confidence {turn.confidence:.2f}")
        if turn.first_phrase_ms is not None:
            bits.append(f"first phrase {turn.first_phrase_ms:.0f} ms")
        if turn.reason and turn.route != "memory":
            bits.append(turn.reason)
        err.print(f"[dim]({'; '.join(bits)})[/dim]", highlight=False)
    return ok
