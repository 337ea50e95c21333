import numpy as np

from anima.lipsync.visemes import is_pause
from anima.tts.piper_voice import LEAD_KEEP, LEAD_LEVEL, split_sentences


def test_alignment_output_is_patched_in(voice):
    # Without onnx (or with the wrong onnx/protobuf pair) Piper silently drops alignments.
    assert len(voice._voice.session.get_outputs()) >= 2


def test_timings_present_contiguous_and_cover_the_audio(voice):
    chunks = list(voice.synthesize("Hello, I am your digital guide. How can I help you today?"))
    assert [c.text for c in chunks] == [
        "Hello, I am your digital guide.",
        "How can I help you today?",
    ]
    for chunk in chunks:
        assert chunk.pcm.dtype == np.int16 and len(chunk.pcm) > chunk.sample_rate // 2
        ph = chunk.phonemes
        assert len(ph) > 10
        assert ph[0].start == 0.0
        assert abs(ph[-1].end - chunk.duration) < 1.0 / chunk.sample_rate
        for prev, cur in zip(ph, ph[1:], strict=False):
            assert abs(cur.start - prev.end) < 1e-9 and cur.end >= cur.start
        spoken = [p.phoneme for p in ph if not is_pause(p.phoneme) and not p.phoneme.isspace()]
        assert {"h", "ɡ"} & set(spoken) or {"k", "h"} & set(spoken)
        # The audio is not silent where phonemes are spoken.
        assert np.abs(chunk.pcm).max() > 3000


def test_speech_is_louder_inside_words_than_in_pauses(voice):
    chunk = next(voice.synthesize("Good morning, everyone."))
    sr = chunk.sample_rate
    pcm = chunk.pcm.astype(np.float64)

    def rms(a: float, b: float) -> float:
        seg = pcm[int(a * sr) : int(b * sr)]
        return float(np.sqrt((seg**2).mean())) if len(seg) else 0.0

    speech = [rms(p.start, p.end) for p in chunk.phonemes if p.phoneme in "ɔɪʊoeæaɛ"]
    pause = chunk.phonemes[-1]  # the sentence pause added after the audio
    assert pause.phoneme == "_"
    assert np.mean(speech) > 20 * (rms(pause.start, pause.end) + 1)


def test_split_sentences():
    assert split_sentences("One. Two!  Three?") == ["One.", "Two!", "Three?"]
    assert split_sentences("你好。我是导游！") == ["你好。", "我是导游！"]
    assert split_sentences("   ") == []


def test_variation_zero_is_a_fixed_rendition(voice):
    # The suite's voice: the same text is the same samples on every call (and every run).
    assert voice.variation == 0.0
    first = np.concatenate([c.pcm for c in voice.synthesize("Where can I park my car?")])
    again = np.concatenate([c.pcm for c in voice.synthesize("Where can I park my car?")])
    assert np.array_equal(first, again)


def test_default_variation_varies_each_rendition():
    from anima.tts import load_voice

    varied = load_voice()  # what users get: Piper's own noise, a new rendition each time
    assert varied.variation == 1.0
    takes = [np.concatenate([c.pcm for c in varied.synthesize("Good morning.")]) for _ in range(3)]
    assert any(
        len(a) != len(b) or not np.array_equal(a, b) for a, b in zip(takes, takes[1:], strict=False)
    )


def test_variation_out_of_range_is_refused():
    import pytest

    from anima.tts import VoiceError, load_voice

    with pytest.raises(VoiceError, match="variation"):
        load_voice(variation=3.0)


def test_a_sentence_starts_with_its_sound_not_with_piper_s_lead_in_silence(voice):
    # Piper opens each sentence with 35-70 ms of near silence: dead time before the reply is
    # heard (issue 22). It is cut to a few ms, and the timings moved with the audio.
    for text in ("Our opening hours are", "Yes, we do.", "Hello!"):
        chunk = next(voice.synthesize(text))
        first = int(np.flatnonzero(np.abs(chunk.pcm.astype(np.int32)) > LEAD_LEVEL)[0])
        assert first / chunk.sample_rate <= LEAD_KEEP + 0.002, (text, first)
        assert chunk.phonemes[0].start == 0.0
        assert abs(chunk.phonemes[-1].end - chunk.duration) < 1.0 / chunk.sample_rate
