"""The HTTP contract of ``anima serve`` (issue 16): the real server on loopback, schemathesis.

Schemathesis 4 runs every check it has (``--checks all``: documented status codes and content
types, response schemas, schema-valid requests accepted and invalid ones refused, ``Allow`` on
405, auth enforced where the schema declares it, stateful use-after-delete) against the
server's own ``/openapi.json``, with real SDP offers for the ``sdp-offer`` format
(``contract_hooks``), so sessions really open and the stateful phase steers them. It runs twice:
bound to loopback with no tokens, and with tokens required, authenticated as the operator.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from server_harness import loaded_engine

from anima.server.app import create_app
from anima.server.bodies import EXAMPLE_OFFER

HERE = Path(__file__).resolve().parent
OPERATOR_KEY = "operator-key-for-the-contract-test"
EXAMPLES = 5  # per operation and phase: enough to reach every route, bounded in time


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def engine(tmp_path_factory, make_settings):
    settings = make_settings(
        tmp_path_factory.mktemp("contract"),
        # Room for every offer schemathesis makes (a full server's 503 is a "server error" to
        # it), a rate it cannot exceed, and sessions that never connect reaped quickly.
        server={"max_sessions": 200, "messages_per_second": 10_000, "message_burst": 10_000},
        webrtc={"connect_timeout": 10.0},
        render={"fps": 10},  # the idle sessions it opens cost little CPU while they wait
    )
    eng = await loaded_engine(settings)
    yield eng
    await eng.aclose()


async def schemathesis(url: str, cwd: Path, *options: str) -> tuple[int, str]:
    """``st run`` against ``url``'s schema with every check; (exit code, output)."""
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "contract_hooks",
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    args = [
        *("run", f"{url}/openapi.json", "--checks", "all", "--max-examples", str(EXAMPLES)),
        *("--seed", "1", "--generation-deterministic"),  # deterministic: no example database
        # A loaded machine may be slow to answer or to generate; neither is a contract failure.
        *("--no-color", "--request-timeout", "60", "--suppress-health-check", "all"),
    ]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "schemathesis.cli",
        *args[:1],
        *options,
        *args[1:],
        cwd=cwd,  # schemathesis keeps replay data in ./.schemathesis
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode("utf-8", "replace")


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("tokens", [False, True], ids=["loopback-open", "tokens-required"])
async def test_schemathesis_finds_no_contract_failure(engine, serve, tmp_path, tokens):
    settings = engine.settings
    headers: list[str] = []
    if tokens:
        webrtc = {"require_token": True, "operator_key": OPERATOR_KEY}
        settings = settings.overridden({"webrtc": webrtc})
        headers = ["-H", f"Authorization: Bearer {OPERATOR_KEY}"]
    app = create_app(settings, engine, host="127.0.0.1")
    async with serve(app) as url:
        code, output = await schemathesis(url, tmp_path, *headers)
    tail = output[-6000:]
    assert code == 0, tail
    assert " passed" in output and "failure" not in output.split("SUMMARY")[-1], tail
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in output, tail


@pytest.mark.asyncio(loop_scope="module")
async def test_the_schema_example_offer_opens_a_session_with_the_operator_key(engine, serve):
    webrtc = {"require_token": True, "operator_key": OPERATOR_KEY}
    app = create_app(engine.settings.overridden({"webrtc": webrtc}), engine, host="127.0.0.1")
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        body = {"sdp": EXAMPLE_OFFER, "greet": False}
        r = await http.post("/api/offer", json=body)
        assert r.status_code == 401 and r.json()["error"] == "unauthorized"
        operator = {"authorization": f"Bearer {OPERATOR_KEY}"}
        r = await http.post("/api/offer", json=body, headers=operator)
        assert r.status_code == 200 and "a=fingerprint" in r.json()["sdp"], r.text
        sid = r.json()["session_id"]
        assert (await http.get(f"/api/sessions/{sid}", headers=operator)).status_code == 200
        assert (await http.delete(f"/api/sessions/{sid}", headers=operator)).status_code == 204
        r = await http.get(f"/api/sessions/{sid}", headers=operator)
        assert r.status_code == 404 and r.json()["error"] == "unknown_session"


# --- what the schema says, and what the server answers without a running engine -------------


def app_without_engine(make_settings, tmp_path, **webrtc):
    """The app (no lifespan runs: routing, validation and middleware answer on their own)."""
    settings = make_settings(tmp_path, webrtc=webrtc) if webrtc else make_settings(tmp_path)
    return create_app(settings, engine=object(), host="127.0.0.1")


def client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.mark.asyncio
async def test_every_error_answer_is_documented_with_the_one_error_body(make_settings, tmp_path):
    async with client(app_without_engine(make_settings, tmp_path)) as http:
        schema = (await http.get("/openapi.json")).json()
    components = schema["components"]["schemas"]
    assert set(components["ErrorBody"]["required"]) == {"error", "message"}
    assert "HTTPValidationError" not in components
    ref = {"$ref": "#/components/schemas/ErrorBody"}
    for path, item in schema["paths"].items():
        for method, op in item.items():
            responses = op["responses"]
            assert "422" not in responses, (method, path)  # invalid requests are 400 here
            errors = {code: r for code, r in responses.items() if code.startswith(("4", "5"))}
            for code, response in errors.items():
                assert response["content"]["application/json"]["schema"] == ref, (path, code)
            if path.startswith("/api/") and path != "/api/health":
                assert "429" in errors and "Retry-After" in errors["429"]["headers"], path
            if op.get("parameters") or op.get("requestBody"):
                assert "400" in errors, (method, path)
    assert "404" in schema["paths"]["/api/sessions/{sid}"]["get"]["responses"]
    assert "503" in schema["paths"]["/api/offer"]["post"]["responses"]
    assert "security" not in schema["paths"]["/api/config"]["get"]  # loopback: no token needed


@pytest.mark.asyncio
async def test_tokens_required_are_declared_as_bearer_security(make_settings, tmp_path):
    app = app_without_engine(make_settings, tmp_path, require_token=True, operator_key="k" * 20)
    async with client(app) as http:
        schema = (await http.get("/openapi.json")).json()
    assert schema["components"]["securitySchemes"]["token"]["scheme"] == "bearer"
    for path in ("/api/offer", "/api/config", "/api/sessions/{sid}/say"):
        op = next(iter(schema["paths"][path].values()))
        assert op["security"] == [{"token": []}], path
    assert "security" not in schema["paths"]["/api/health"]["get"]


@pytest.mark.asyncio
async def test_method_not_allowed_names_every_method_of_the_path(make_settings, tmp_path):
    async with client(app_without_engine(make_settings, tmp_path)) as http:
        r = await http.request("PATCH", "/api/sessions/abc")
        assert r.status_code == 405
        # Two routes share the path, GET and DELETE; Starlette alone names the first one's.
        assert r.headers["allow"] == "DELETE, GET"
        assert r.json() == {"error": "method_not_allowed", "message": "Method Not Allowed"}
        r = await http.request("TRACE", "/api/offer")
        assert (r.status_code, r.headers["allow"]) == (405, "POST")
        r = await http.post("/static/app.js")
        assert (r.status_code, r.headers["allow"]) == (405, "GET, HEAD")
        r = await http.get("/api/nothing-here")
        assert r.status_code == 404 and r.json()["error"] == "not_found"


@pytest.mark.asyncio
async def test_schema_valid_bodies_are_what_the_handlers_check(make_settings, tmp_path):
    async with client(app_without_engine(make_settings, tmp_path)) as http:
        say = "/api/sessions/abc/say"
        r = await http.post(say, json={"text": "  \n "})  # whitespace alone is no text
        assert r.status_code == 400 and r.json()["message"] == "text: the text is empty"
        r = await http.post(say, json={"text": "hi", "emotion": "furious"})
        assert r.status_code == 400 and r.json()["error"] == "bad_request"
        r = await http.post(say, json={"text": "x" * 2001})  # limits.max_text_chars
        assert r.status_code == 400 and "2000" in r.json()["message"]
        r = await http.post("/api/offer", json={"sdp": "v=0\r\nm=audio 9 X\r\n"})
        assert r.status_code == 400 and r.json()["error"] == "bad_sdp"
        assert "no video m-line" in r.json()["message"]
        r = await http.post(
            "/api/offer", json={"sdp": "v=0\r\nm=audio 9\r\nm=video 9", "avatar": "../x"}
        )
        assert r.status_code == 400 and r.json()["message"].startswith("avatar:")
        ice = "/api/sessions/abc/ice"
        r = await http.post(ice, json={"candidate": "candidate:garbage"})
        assert r.status_code == 400 and r.json()["error"] == "bad_candidate"
        assert "the ICE candidate is malformed" in r.json()["message"]
        r = await http.post("/api/sessions/abc/close", params={"token": "t" * 1025})
        assert r.status_code == 400 and r.json()["message"].startswith("query.token:")


@pytest.mark.asyncio
async def test_a_refused_cors_preflight_is_the_error_body(make_settings, tmp_path):
    app = app_without_engine(make_settings, tmp_path, cors_origins=["https://shop.example"])
    async with client(app) as http:
        ask = {"access-control-request-method": "POST"}
        r = await http.options("/api/offer", headers={"origin": "https://evil.example", **ask})
        assert r.status_code == 400
        assert r.json() == {"error": "cors_refused", "message": "Disallowed CORS origin"}
        r = await http.options("/api/offer", headers={"origin": "https://shop.example", **ask})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://shop.example"
