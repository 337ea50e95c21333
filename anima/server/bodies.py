"""The bodies of the HTTP contract of ``anima serve``: what each route takes and gives.

Typed so that a request the schema calls valid is one the server can take: every check a
handler makes on a field is in that field's schema too (lengths, patterns, enums), and a
field's validator gives the same one-line message the handler would. What a schema cannot say
is said in its ``format``: an SDP offer (``format: sdp-offer``) must also be one a WebRTC
peer can answer (ICE credentials, a DTLS fingerprint, a common codec), which only the peer
connection can tell (``400 bad_sdp``).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model

from anima.frames import EMOTIONS
from anima.server.rtc import MAX_SDP_BYTES, SDP_OFFER_PATTERN, check_offer

AVATAR_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"  # as anima.render.avatar stores them
SESSION_ID = r"^[A-Za-z0-9_-]+$"

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_HEX = r"[0-9a-fA-F]{1,4}"
_ADDRESS = (
    rf"(?:(?:{_OCTET}\.){{3}}{_OCTET}"  # IPv4
    rf"|(?:{_HEX}:){{7}}{_HEX}|(?:{_HEX}:){{1,6}}:(?:{_HEX})?|::(?:{_HEX})?"  # IPv6
    r"|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.local)"  # mDNS (browsers)
)
# An ICE candidate line (RFC 8839) the server can use, or "" (end of candidates): the
# optional parts are the ones browsers send, in their order.
CANDIDATE_PATTERN = (
    rf"^(?:(?:candidate:)?[A-Za-z0-9+/]{{1,32}} [0-9]{{1,3}} (?:udp|UDP|tcp|TCP) [0-9]{{1,10}} "
    rf"{_ADDRESS} [0-9]{{1,5}} typ (?:host|srflx|relay)"
    rf"(?: raddr {_ADDRESS} rport [0-9]{{1,5}})?(?: tcptype (?:active|passive|so))?"
    r"(?: generation [0-9]{1,3})?(?: ufrag [A-Za-z0-9+/]{1,64})?(?: network-id [0-9]{1,5})?"
    r"(?: network-cost [0-9]{1,5})?)?$"
)

_FINGERPRINT = ":".join(["DB", "3E", "2C", "F9", "3E", "68", "2A", "29"] * 4)
_TRANSPORT = [
    "a=ice-ufrag:OMPT",
    "a=ice-pwd:IZVY0xapzYkxUoQkMJSn9B",
    f"a=fingerprint:sha-256 {_FINGERPRINT}",
    "a=setup:actpass",
]
# A small offer a peer can answer (a browser's has more codecs, extensions and candidates).
EXAMPLE_OFFER = (
    "\r\n".join(
        [
            "v=0",
            "o=- 1 1 IN IP4 0.0.0.0",
            "s=-",
            "t=0 0",
            "a=group:BUNDLE 0 1 2",
            "m=audio 9 UDP/TLS/RTP/SAVPF 96",
            "c=IN IP4 0.0.0.0",
            "a=sendrecv",
            "a=mid:0",
            "a=rtcp-mux",
            "a=rtpmap:96 opus/48000/2",
            *_TRANSPORT,
            "m=video 9 UDP/TLS/RTP/SAVPF 97",
            "c=IN IP4 0.0.0.0",
            "a=recvonly",
            "a=mid:1",
            "a=rtcp-mux",
            "a=rtpmap:97 VP8/90000",
            *_TRANSPORT,
            "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
            "c=IN IP4 0.0.0.0",
            "a=mid:2",
            "a=sctp-port:5000",
            *_TRANSPORT,
        ]
    )
    + "\r\n"
)

_CANDIDATE = re.compile(CANDIDATE_PATTERN)


def _offer_sdp(sdp: str) -> str:
    check_offer(sdp)  # the handler's own check, so its message is the error's
    return sdp


class Offer(BaseModel):
    """An SDP offer from the page."""

    model_config = ConfigDict(regex_engine="python-re")

    sdp: Annotated[str, AfterValidator(_offer_sdp)] = Field(
        max_length=MAX_SDP_BYTES,
        description="The browser's offer SDP: 'v=0', then one line each, with an audio and a "
        "video m-line (recvonly or sendrecv transceivers). It must also be one a WebRTC peer "
        "can answer (ICE credentials, DTLS fingerprint, a common codec), else 400 bad_sdp.",
        examples=[EXAMPLE_OFFER],
        json_schema_extra={"pattern": SDP_OFFER_PATTERN, "format": "sdp-offer"},
    )
    type: Literal["offer"] = "offer"
    avatar: str | None = Field(
        None, pattern=AVATAR_NAME, description="Avatar name (GET /api/avatars); default sample."
    )
    token: str | None = Field(
        None, min_length=1, max_length=1024, description="Session token (needed off loopback)."
    )
    greet: bool = Field(True, description="Speak the persona's greeting on connect.")
    drive: bool = Field(
        False, description="Speak through the avatar: the mic is its voice and moves its lips."
    )


class Answer(BaseModel):
    """The server's SDP answer and the id of the session it opened."""

    sdp: str
    type: Literal["answer"] = "answer"
    session_id: str


def _candidate_line(line: str) -> str:
    if not _CANDIDATE.match(line):
        raise ValueError(f"the ICE candidate is malformed: {line[:80]!r}")
    return line


class Candidate(BaseModel):
    """A trickled ICE candidate (as ``RTCIceCandidate.toJSON()`` gives it)."""

    candidate: Annotated[str, AfterValidator(_candidate_line)] = Field(
        "",
        max_length=1000,
        description="An ICE candidate line; empty: no more candidates.",
        json_schema_extra={"pattern": CANDIDATE_PATTERN},  # checked by _candidate_line
        examples=["candidate:1 1 udp 2122260223 192.0.2.10 54321 typ host generation 0"],
    )
    sdpMid: str | None = Field(None, max_length=64)
    sdpMLineIndex: int | None = Field(None, ge=0, le=1023)


def _spoken(text: str) -> str:
    if not text.split():  # as the session counts it: whitespace alone is no text
        raise ValueError("the text is empty")
    return text


def text_body(max_chars: int) -> type[BaseModel]:
    """The body of ``say`` / ``ask``, as long as the engine's ``limits.max_text_chars`` allows."""
    return create_model(
        "Text",
        __doc__="Text for the avatar to say or to answer.",
        text=(
            Annotated[str, AfterValidator(_spoken)],
            Field(
                min_length=1,
                max_length=max_chars,
                description="The words (not whitespace alone).",
                # Checked by _spoken, with its message; Python's \S is str.split()'s whitespace.
                json_schema_extra={"pattern": r"\S"},
            ),
        ),
        emotion=(
            Literal[EMOTIONS],
            Field("neutral", description="How to say it (say only; ask ignores it)."),
        ),
    )


class TokenRequest(BaseModel):
    """Ask for a token; the session id is chosen by the server unless given."""

    session_id: str | None = Field(None, min_length=8, max_length=64, pattern=SESSION_ID)


class TokenGrant(BaseModel):
    """A session token, the session it opens and when it stops working (unix seconds)."""

    token: str
    session_id: str
    expires: float


class Health(BaseModel):
    """Liveness and load."""

    status: Literal["ok", "draining"]
    sessions: int
    max_sessions: int
    token_required: bool


class Avatars(BaseModel):
    """Avatars a session may use."""

    avatars: list[str]


class PageStrings(BaseModel):
    """The chat page's strings in one language (the pack's code, English for missing keys)."""

    lang: str
    strings: dict[str, str]


class PageConfig(BaseModel):
    """What the page needs before its offer."""

    ice_servers: list[dict[str, Any]]
    avatars: list[str]
    token_required: bool


class Sessions(BaseModel):
    """Every open session, as ``GET /api/sessions/{id}`` describes each."""

    sessions: list[dict[str, Any]]


class Status(BaseModel):
    """What became of a request that is carried out later."""

    status: str
