import pytest

from anima.cli import _parser
from anima.cli.serve import apply_args


def test_serve_options_override_settings(settings, tmp_path):
    args = _parser().parse_args(
        ["serve", "--host", "0.0.0.0", "--port", "0", "--backend", "kb", "--kb", str(tmp_path)]
    )
    out = apply_args(args, settings)
    assert (out.server.host, out.server.port) == ("0.0.0.0", 0)
    assert out.brain.backend == "kb" and out.knowledge.dir == tmp_path
    assert settings.server.host == "127.0.0.1"  # the input is left as it was


def test_serve_keeps_secrets(settings):
    settings.webrtc.operator_key = "op-key"
    out = apply_args(_parser().parse_args(["serve"]), settings)
    assert out.webrtc.operator_key.get_secret_value() == "op-key"


def test_serve_refuses_bad_values(settings):
    args = _parser().parse_args(["serve", "--port", "70000"])
    with pytest.raises(ValueError, match="port"):
        apply_args(args, settings)
