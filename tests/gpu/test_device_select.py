"""Device selection: parsing, config validation, auto/cuda resolution per runtime (CPU machine)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from anima import device as D
from anima.config import Settings


@pytest.mark.parametrize("value", ["cpu", "CUDA", " cuda:1 ", "auto", "cuda:0"])
def test_parse_accepts(value):
    assert D.parse_device(value) == value.strip().lower()


@pytest.mark.parametrize("value", ["gpu", "cuda:", "cuda:x", "cuda1", "", "mps", "cuda:123"])
def test_config_rejects_bad_device(value):
    with pytest.raises(ValidationError, match="device must be"):
        Settings(device=value)
    with pytest.raises(ValidationError, match="device must be"):
        Settings(listen={"device": value})


def test_sections_inherit_top_level_device_but_keep_their_own():
    s = Settings(device="auto", render={"device": "cuda:1"})
    assert (s.listen.device, s.voice.device, s.render.device) == ("auto", "auto", "cuda:1")
    assert Settings().listen.device == "cpu"


def test_file_device_not_overridden_by_environment(tmp_path, monkeypatch):
    cfg = tmp_path / "gpu.toml"
    cfg.write_text('device = "auto"\n[listen]\ndevice = "cuda"\n', encoding="utf-8")
    monkeypatch.setenv("ANIMA_LISTEN__BEAM_SIZE", "2")  # the env sets the listen section too
    s = Settings.load(cfg)
    assert (s.listen.device, s.voice.device, s.listen.beam_size) == ("cuda", "auto", 2)


def _probes(monkeypatch, **counts):
    for name in D.BACKENDS:
        n = counts.get(name, 0)
        monkeypatch.setitem(D.PROBES, name, lambda n=n, name=name: (n, f"{name} has no CUDA"))


def test_auto_is_cpu_without_cuda(monkeypatch):
    _probes(monkeypatch)
    for backend in D.BACKENDS:
        assert D.resolve_device("auto", backend) == D.CPU
    assert D.resolve_device(None, "torch") == D.CPU


def test_cuda_absent_is_one_clear_error(monkeypatch):
    _probes(monkeypatch)
    with pytest.raises(D.DeviceError, match="onnxruntime has no CUDA") as err:
        D.resolve_device("cuda", "onnxruntime", what="Piper voice")
    assert "Piper voice" in str(err.value) and "\n" not in str(err.value)


def test_cuda_index_checked_against_count(monkeypatch):
    _probes(monkeypatch, ctranslate2=2)
    assert D.resolve_device("cuda:1", "ctranslate2") == D.Device("cuda", 1)
    assert str(D.resolve_device("auto", "ctranslate2")) == "cuda:0"
    with pytest.raises(D.DeviceError, match="only 2 CUDA"):
        D.resolve_device("cuda:2", "ctranslate2")


def test_real_probes_on_this_machine():
    # This CPU machine: CTranslate2 counts 0, onnxruntime lacks the provider, torch is CPU-only.
    for backend in D.BACKENDS:
        assert D.resolve_device("auto", backend) == D.CPU
        with pytest.raises(D.DeviceError):
            D.resolve_device("cuda", backend)
