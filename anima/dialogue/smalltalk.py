"""Small talk: fixed in-character replies to greetings, thanks, goodbyes and questions about
the avatar itself ("do you hear me?", "who are you?", "are you a robot?"), in English and
Chinese.

Said without a model, so a tiny model never answers "Do you hear me?" with "No." nor invents a
life story; ``{name}`` and ``{role}`` are filled from the persona.

An utterance is small talk when every clause of it is ("Good morning! Who am I talking to?",
"好的，谢谢啊"): clauses are cut at punctuation, and Chinese sentence particles (啊 呀 吧…)
are taken off their ends. The reply answers the weightiest kind present: a question about the
avatar before a greeting, a greeting before thanks. Anything else in the utterance ("thanks,
and where do I park?") makes it a question, not small talk.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from anima.dialogue.persona import Persona

# (kind, language, clause pattern), weightiest kinds first: the reply is that of the first kind
# any clause matches. Patterns match a whole clause, lower case, without end punctuation.
_KINDS: tuple[tuple[str, str, str], ...] = (
    (
        "identity",
        "en",
        r"who are you|what('?s| is) your name|tell me about yourself|what are you|"
        r"introduce yourself|who am i (talking|speaking) (to|with)|"
        r"are you (a |an )?(real )?(robot|bot|machine|computer|human( being)?|person|"
        r"real|ai|artificial intelligence)|"
        r"am i (talking|speaking) to a (real )?(person|human|robot|machine|computer)",
    ),
    (
        "identity",
        "zh",
        r"你是谁|您是谁|你叫什么(名字)?|介绍一下(你自己|自己)|我在(跟|和)谁说话|"
        r"你是(不是)?(机器人|真人|人|ai|人工智能|电脑)(吗)?",
    ),
    (
        "hear",
        "en",
        r"(can|do|could) you (hear|understand) me|(hello )?is (this|it) working",
    ),
    ("hear", "zh", r"你能听(到|见)我(说话)?吗|听得(到|见)吗|能听(到|见)吗"),
    (
        "how",
        "en",
        r"how are you( doing)?( today)?|how'?s it going|how is your day( going)?|"
        r"are you (ok|okay|well|tired|busy)( today)?",
    ),
    (
        "how",
        "zh",
        r"你好吗|您好吗|最近(怎么样|好吗)|你还好吗|你(今天)?(累不累|忙不忙|辛苦吗|累吗|忙吗)|"
        r"你(今天)?(过得)?怎么样",
    ),
    (
        "greet",
        "en",
        r"(hi|hello|hey|hiya|good (morning|afternoon|evening|day))( there| to you| everyone)?",
    ),
    (
        "greet",
        "zh",
        r"你好|您好|你们好|嗨|哈喽|大家好|早|早上好|上午好|中午好|下午好|晚上好",
    ),
    (
        "thanks",
        "en",
        r"(many thanks|thanks|thank you|cheers|great|perfect|ok(ay)?|alright|got it|i see|"
        r"lovely|brilliant|wonderful)( (so|very) much| a lot| a million| again|"
        r" for (your|the|all your) help)?|"
        r"(that'?s|that is|you'?ve been|you are|you'?re) (very |really |so )?"
        r"(helpful|great|perfect|kind|lovely)",
    ),
    (
        "thanks",
        "zh",
        r"(谢谢|多谢|感谢|非常感谢|太感谢)(你|您)?(了)?(的帮助)?|好的|好|行|嗯|明白了?|知道了|懂了|"
        r"辛苦(你|您)?了|麻烦(你|您)了|太好了",
    ),
    (
        "bye",
        "en",
        r"(bye|goodbye|bye bye|see you( later)?|that'?s all|have a (nice|good) day)",
    ),
    ("bye", "zh", r"再见|拜拜|回头见"),
)
_REPLIES = {
    ("identity", "en"): "I'm {name}, {role}. I'm an AI assistant.",
    ("identity", "zh"): "我是{name}，一名AI助手。",
    ("hear", "en"): "Yes, I can hear you. What can I do for you?",
    ("hear", "zh"): "听得到，请问有什么可以帮您？",
    ("how", "en"): "I'm well, thank you. How can I help you?",
    ("how", "zh"): "我很好，谢谢关心！请问有什么可以帮您？",
    ("greet", "en"): "Hello! What can I do for you?",
    ("greet", "zh"): "您好！请问有什么可以帮您？",
    ("thanks", "en"): "You're welcome.",
    ("thanks", "zh"): "不客气。",
    ("bye", "en"): "Goodbye, have a nice day!",
    ("bye", "zh"): "再见，祝您愉快！",
}
_ANONYMOUS = {  # no persona to fill in
    ("identity", "en"): "I'm an AI assistant.",
    ("identity", "zh"): "我是一名AI助手。",
}
_PATTERNS = tuple(
    (kind, lang, re.compile(f"(?:{pattern})", re.I)) for kind, lang, pattern in _KINDS
)
_CLAUSE_END = re.compile(r"[,.!?;:，。！？；：、~…]+|\s+-\s+")
_PARTICLES = re.compile(r"[啊呀吧呢嘛啦哦哈呐噢]+$")
_MAX_CHARS = 120  # longer than this is a question, however friendly its start


def small_talk(text: str, persona: Persona | None = None) -> str | None:
    """A fixed reply to a greeting, thanks, goodbye or a question about the avatar itself."""
    text = text.strip()
    if not text or len(text) > _MAX_CHARS:
        return None
    found: set[tuple[str, str]] = set()
    for raw in _CLAUSE_END.split(text):
        clause = _PARTICLES.sub("", " ".join(raw.split()).lower().strip("\"'“”‘’ "))
        if not clause:
            continue
        kind = next(
            ((k, lang) for k, lang, pattern in _PATTERNS if pattern.fullmatch(clause)), None
        )
        if kind is None:
            return None  # a clause that is not small talk: the utterance is a question
        found.add(kind)
    if not found:
        return None
    order = [k for k, _, _ in _KINDS]
    kind = min(found, key=lambda kl: order.index(kl[0]))
    if persona is None:
        return _ANONYMOUS.get(kind, _REPLIES[kind])
    return _REPLIES[kind].replace("{name}", persona.name).replace("{role}", persona.role)
