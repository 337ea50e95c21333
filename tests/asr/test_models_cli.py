"""Model folders (embedded, joined multilingual, user paths), the stage and ``anima transcribe``."""

from __future__ import annotations

import asyncio
import hashlib
import json
import wave

import numpy as np
import pytest
from asr_helpers import to_int16, with_silence

from anima.asr import Listener
from anima.asr.models import joined_base, resolve_model
from anima.asr.stage import ListenStage
from anima.asr.whisper import WhisperOptions, WhisperRecognizer
from anima.cli import main
from anima.frames import AudioFrame, Transcript, TurnEnd, UserSpeech
from anima.models import ModelNotFound
from anima.pipeline import Pipeline, VirtualClock


def test_embedded_model_and_bad_paths(tmp_path):
    assert (resolve_model("tiny.en", tmp_path) / "model.bin").is_file()
    with pytest.raises(ModelNotFound, match="neither"):
        resolve_model(str(tmp_path / "nope"), tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFound, match="no model.bin"):
        resolve_model(str(tmp_path / "empty"), tmp_path)


def test_english_model_refuses_another_language():
    with pytest.raises(ValueError, match="English-only"):
        WhisperRecognizer(
            resolve_model("tiny.en", None),
            options=WhisperOptions(language="de"),  # type: ignore[arg-type]
        )


@pytest.mark.slow
def test_multilingual_base_is_joined_once_verified_and_works(tmp_path, sentence):
    folder = joined_base(tmp_path / "models")
    note = json.loads((folder / "anima-join.json").read_text())
    digest = hashlib.sha256((folder / "model.bin").read_bytes()).hexdigest()
    assert note["sha256"] == digest and (folder / "model.bin").stat().st_size == note["size"]
    assert not [p for p in (tmp_path / "models").iterdir() if p.name.startswith(".")]
    mtime = (folder / "model.bin").stat().st_mtime_ns
    assert joined_base(tmp_path / "models") == folder  # second use: no re-join
    assert (folder / "model.bin").stat().st_mtime_ns == mtime
    with open(folder / "model.bin", "r+b") as f:  # damage it: the next use joins again
        f.truncate(1000)
    assert (joined_base(tmp_path / "models") / "model.bin").stat().st_size == note["size"]
    rec = WhisperRecognizer(folder)  # language detected by the multilingual model
    result = rec.transcribe(sentence)
    assert result.language == "en" and "museum" in result.text.lower()


async def test_listen_stage_in_a_pipeline(recognizer, sentence):
    stage = ListenStage(Listener(recognizer, clock=VirtualClock()))
    pcm = to_int16(with_silence(0.3, sentence, 1.0))
    out = []
    async with Pipeline([stage], maxsize=4) as pipe:
        turn = pipe.next_turn()

        async def consume():
            async for frame in pipe.frames():
                out.append(frame)
                if isinstance(frame, TurnEnd):
                    return

        task = asyncio.create_task(consume())
        for i in range(0, len(pcm), 320):
            await pipe.push(AudioFrame(turn, pcm[i : i + 320], 16000, pts=i))
        while not [f for f in out if isinstance(f, Transcript) and f.final]:
            await pipe.push(AudioFrame(turn, np.zeros(320, np.int16), 16000))
            await asyncio.sleep(0.01)
        await pipe.push(TurnEnd(turn))
        await asyncio.wait_for(task, 30)
    speech = [f for f in out if isinstance(f, UserSpeech)]
    finals = [f for f in out if isinstance(f, Transcript) and f.final]
    assert [s.started for s in speech] == [True, False]
    assert len(finals) == 1 and finals[0].turn == turn and "museum" in finals[0].text.lower()


def _wav(path, pcm, rate, channels=1):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def test_transcribe_command(tmp_path, capsys, voice):
    chunks = [
        np.concatenate([c.pcm for c in voice.synthesize(t)])
        for t in ("Good morning.", "Where is the station?")
    ]
    gap = np.zeros(voice.sample_rate, np.int16)
    mono = np.concatenate([gap, chunks[0], gap, chunks[1], gap])
    _wav(tmp_path / "talk.wav", np.stack([mono, mono], 1), voice.sample_rate, channels=2)
    (tmp_path / "junk.mp3").write_bytes(np.random.default_rng(0).bytes(4000))
    data = ["--data-dir", str(tmp_path / "data")]
    code = main([*data, "transcribe", "--json", str(tmp_path / "talk.wav")])
    out = capsys.readouterr().out
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(lines) == 2
    assert "morning" in lines[0]["text"].lower() and "station" in lines[1]["text"].lower()
    assert 0.9 < lines[0]["start"] < 1.3 and lines[0]["end"] < lines[1]["start"]
    code = main([*data, "transcribe", str(tmp_path / "junk.mp3"), str(tmp_path / "talk.wav")])
    captured = capsys.readouterr()
    assert code == 2 and "cannot read" in captured.err and "Traceback" not in captured.err
    assert "station" in captured.out.lower()  # the good file still ran
