"""The kiosk WebSocket protocol (version 1): server and message schema; see ``docs/protocol.md``."""

from anima.protocol.messages import VERSION, ProtocolError
from anima.protocol.server import ProtocolServer

__all__ = ["VERSION", "ProtocolError", "ProtocolServer"]
