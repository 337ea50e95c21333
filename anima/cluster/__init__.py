"""Beyond one machine: engine workers and stateless gateways on a NATS cluster.

- :mod:`anima.cluster.worker` — ``anima worker``: an engine answering offers and kiosk sockets
  that arrive over NATS, with the server's own WebRTC code;
- :mod:`anima.cluster.gateway` — ``anima gateway``: page, API, tokens; forwards signalling;
- :mod:`anima.cluster.wire` — subjects and messages; :mod:`anima.cluster.book` — the
  ``session → worker`` records in a JetStream key-value bucket;
- :mod:`anima.cluster.directory` — a gateway's view of the workers from their heartbeats;
- :mod:`anima.cluster.kiosk` — a kiosk WebSocket carried over NATS;
- :mod:`anima.cluster.deploy` — NATS and nginx-rtmp fan-out configs (``anima deploy``);
- :mod:`anima.cluster.commands` — the three commands.
"""
