"""``anima serve``: browser chat over WebRTC.

- :mod:`anima.server.app` — the ASGI app (FastAPI): the page, signalling, REST API, metrics;
- :mod:`anima.server.bodies` — what each route takes and gives, typed as tightly as it checks;
- :mod:`anima.server.contract` — the one JSON error body, its handlers, ``Allow`` on 405;
- :mod:`anima.server.rtc` — one conversation: an aiortc peer connection around an engine
  session (mic in, avatar audio + video + events out, one teardown path);
- :mod:`anima.server.tracks` — the outgoing tracks, their shared audio-clock pacer, the mic reader;
- :mod:`anima.server.registry` — open conversations, limits, idle/connect/heartbeat timeouts;
- :mod:`anima.server.auth` — session tokens, the operator key, coturn TURN credentials;
- :mod:`anima.server.limits` — per-client/per-token rate buckets, session slots, the real
  client address (``X-Forwarded-For`` from ``server.trusted_proxies`` only);
- :mod:`anima.server.serving` — uvicorn with a graceful drain on SIGTERM;
- :mod:`anima.server.client` — a Python WebRTC client (tests, ``anima bench rtc``);
- ``static/`` — the page (plain HTML/JS/CSS).
"""
