"""Schemathesis hooks for ``anima serve``: real SDP offers for the ``sdp-offer`` format.

The API schema describes an offer's text by a pattern, but whether a WebRTC peer can answer it
(ICE credentials, a DTLS fingerprint, a common codec) only a peer connection can tell. Load this
module to generate offers that a browser could send, so schema-valid offers are answerable:

    SCHEMATHESIS_HOOKS=contract_hooks st run http://127.0.0.1:8765/openapi.json --checks all

(with ``tests/server`` on ``PYTHONPATH``).
"""

from __future__ import annotations

import asyncio

import schemathesis
from aiortc import RTCPeerConnection
from hypothesis import strategies as st


async def _offer(audio: str, video: str, channel: bool) -> str:
    pc = RTCPeerConnection()
    pc.addTransceiver("audio", direction=audio)
    pc.addTransceiver("video", direction=video)
    if channel:
        pc.createDataChannel("events")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


async def _offers() -> list[str]:
    shapes = [("sendrecv", "recvonly", True), ("recvonly", "recvonly", True)]
    shapes.append(("sendrecv", "sendrecv", False))
    return [await _offer(*shape) for shape in shapes]


OFFERS = asyncio.run(_offers())
schemathesis.openapi.format("sdp-offer", st.sampled_from(OFFERS))
