"""Voice backend selection: Piper with device, XTTS only when selected, clear install error."""

from __future__ import annotations

import importlib.util
import sys
import wave

import numpy as np
import pytest

from anima.config import Settings
from anima.device import DeviceError
from anima.tts import VoiceError, load_voice, voice_from_settings

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("TTS") is not None, reason="checks the machine without coqui-tts"
)


def _wav(path):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.zeros(16000, np.int16).tobytes())
    return path


def test_xtts_without_coqui_says_how_to_install(tmp_path):
    s = Settings(
        voice={"backend": "xtts", "model": tmp_path, "reference_wav": _wav(tmp_path / "r.wav")}
    )
    with pytest.raises(VoiceError, match=r"anima\[xtts\]"):
        voice_from_settings(s.voice)
    assert "TTS" not in sys.modules


def test_unknown_backend_lists_both():
    with pytest.raises(VoiceError, match="piper, .*xtts"):
        load_voice("festival")


def test_piper_cuda_refused_clearly_auto_runs_on_cpu():
    with pytest.raises(DeviceError, match="onnxruntime-gpu"):
        load_voice("piper", device="cuda")
    voice = voice_from_settings(Settings(device="auto").voice)
    assert voice.device == "cpu"
    assert getattr(voice, "phoneme_timings", True)


class _FakeXtts:
    """Stands in for coqui's Xtts model object (the adapter's only dependency)."""

    class config:  # noqa: N801 - mirrors coqui's attribute
        class audio:  # noqa: N801
            output_sample_rate = 24000

    def __init__(self):
        self.cloned = None

    def get_conditioning_latents(self, audio_path):
        self.cloned = audio_path
        return "latent", "speaker"

    def inference_stream(self, text, language, latent, speaker, **kw):
        assert (latent, speaker, language) == ("latent", "speaker", "en")
        for k in range(3):  # streamed pieces, float in -1..1 like torch tensors
            yield np.full(2400, 0.1 * (k + 1), np.float32)


def test_adapter_streams_chunks_without_timings(tmp_path):
    from anima.tts.xtts import XttsVoice

    fake = _FakeXtts()
    ref = _wav(tmp_path / "me.wav")
    voice = XttsVoice(reference_wav=ref, engine=fake, sentence_silence=0.1)
    assert fake.cloned == [str(ref)] and voice.sample_rate == 24000
    chunks = list(voice.synthesize("Hello there. How are you?", turn=3))
    assert len(chunks) == 6  # three streamed pieces per sentence
    assert all(c.phonemes == () and c.turn == 3 and c.sample_rate == 24000 for c in chunks)
    assert chunks[0].pcm.dtype == np.int16 and abs(int(chunks[0].pcm[0]) - 3277) <= 1
    assert len(chunks[2].pcm) == 2400 + 2400  # the last piece carries the sentence pause
    assert not chunks[2].pcm[-2400:].any()
    assert [c.text for c in chunks] == ["Hello there."] * 3 + ["How are you?"] * 3
    assert XttsVoice.phoneme_timings is False


def test_adapter_needs_reference(tmp_path):
    from anima.tts.xtts import XttsVoice, check_model_dir

    with pytest.raises(VoiceError, match="reference clip not found"):
        XttsVoice(reference_wav=tmp_path / "none.wav", engine=_FakeXtts())
    with pytest.raises(VoiceError, match="missing config.json"):
        check_model_dir(tmp_path)


def test_session_lipsyncs_xtts_from_audio():
    from anima.lipsync.neural import NeuralLipSync
    from anima.render_job import lipsync_for
    from anima.tts.xtts import XttsVoice

    assert isinstance(lipsync_for(XttsVoice.__new__(XttsVoice)), NeuralLipSync)
    assert lipsync_for(object()) is None
