"""Settings.overridden: overrides on top of loaded settings; inherited devices stay inherited."""

import pytest

from anima.config import Settings


def test_top_level_device_moves_every_backend_that_did_not_choose(tmp_path):
    cfg = tmp_path / "a.toml"
    cfg.write_text('[voice]\ndevice = "cpu"\n')
    base = Settings.load(cfg)
    assert (base.listen.device, base.voice.device, base.render.device) == ("cpu",) * 3
    moved = base.overridden({"device": "auto", "server": {"port": 9000}})
    assert moved.device == "auto" and moved.server.port == 9000
    # listen and render inherited the top-level device; voice chose its own in the file.
    assert (moved.listen.device, moved.voice.device, moved.render.device) == ("auto", "cpu", "auto")
    again = moved.overridden({"device": "cpu"})
    assert again.listen.device == "cpu"
    with pytest.raises(ValueError):
        base.overridden({"device": "tpu"})


def test_engine_from_settings_honours_a_device_override():
    from anima.engine import Engine

    engine = Engine.from_config(Settings.load(None), device="auto")
    assert engine.settings.render.device == "auto" and engine.settings.listen.device == "auto"
