"""Small talk: fixed in-character replies to greetings, thanks, goodbyes and questions about
the avatar itself ("do you hear me?", "who are you?"), in English and Chinese.

Said without a model, so a tiny model never answers "Do you hear me?" with "No." nor invents a
life story; ``{name}`` and ``{role}`` are filled from the persona.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from anima.dialogue.persona import Persona

# Fixed replies to talk that is not a question about the domain ({name}, {role} filled in).
_SMALL_TALK = (
    (
        r"^(hi|hello|hey|good (morning|afternoon|evening|day))( there| to you)?\W*$",
        "Hello! What can I do for you?",
    ),
    (
        r"^(many thanks|thanks|thank you|cheers|great|perfect|ok(ay)?)"
        r"( (so|very) much| a lot| a million| again| for your help)?\W*$",
        "You're welcome.",
    ),
    (r"^(bye|goodbye|see you|that'?s all)\W*$", "Goodbye, have a nice day!"),
    (
        r"^(can|do|could) you (hear|understand) me\W*$|^(hello,? )?is (this|it) working\W*$",
        "Yes, I can hear you. What can I do for you?",
    ),
    (
        r"^(who are you|what('?s| is) your name|tell me about yourself|what are you|"
        r"introduce yourself|are you (a robot|human|real|an ai))\W*$",
        "I'm {name}, {role}. I'm an AI assistant.",
    ),
    (r"^how are you( doing| today)?\W*$", "I'm well, thank you. How can I help you?"),
    (
        r"^(你好|您好|嗨|哈喽|大家好|早|早上好|上午好|中午好|下午好|晚上好)(呀|啊)?[!！。，,]*$",
        "您好！请问有什么可以帮您？",
    ),
    (r"^(谢谢|多谢|谢谢你|谢谢您|非常感谢|感谢|好的)(啦|了|呀|啊)?[!！。，,]*$", "不客气。"),
    (r"^(再见|拜拜)[!！。，,]*$", "再见，祝您愉快！"),
    (r"^(你是谁|你叫什么名字?|介绍一下你自己)[?？!！。]*$", "我是{name}，一名AI助手。"),
    (r"^(你能听到我吗|听得到吗|听得见吗)[?？!！。]*$", "听得到，请问有什么可以帮您？"),
)
_PATTERNS = tuple((re.compile(p, re.I), line) for p, line in _SMALL_TALK)


def small_talk(text: str, persona: Persona | None = None) -> str | None:
    """A fixed reply to a greeting, thanks, goodbye or a question about the avatar itself."""
    for pattern, line in _PATTERNS:
        if pattern.match(text.strip()):
            if persona is None:
                return line.replace("{name}", "an assistant").replace("{role}, ", "")
            return line.replace("{name}", persona.name).replace("{role}", persona.role)
    return None
