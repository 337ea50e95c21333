"""CTranslate2 Whisper folders: validated before load; CUDA compute type defaults to float16."""

from __future__ import annotations

import shutil

import pytest

from anima.asr.models import compute_type_for, resolve_model
from anima.device import DeviceError
from anima.models import ModelNotFound


def _folder(tmp_path, *files, empty=()):
    d = tmp_path / "whisper-large-v3"
    d.mkdir()
    for f in files:
        (d / f).write_bytes(b"" if f in empty else b"x")
    return d


def test_complete_folder_accepted(tmp_path):
    d = _folder(tmp_path, "model.bin", "config.json", "tokenizer.json", "vocabulary.json")
    assert resolve_model(str(d), tmp_path) == d


@pytest.mark.parametrize(
    ("missing", "why"),
    [
        ("model.bin", "no model.bin"),
        ("config.json", "no config.json"),
        ("tokenizer.json", "no tokenizer.json"),
        ("vocabulary.txt", "no vocabulary"),
    ],
)
def test_incomplete_folder_names_the_missing_file(tmp_path, missing, why):
    files = {"model.bin", "config.json", "tokenizer.json", "vocabulary.txt"} - {missing}
    d = _folder(tmp_path, *files)
    with pytest.raises(ModelNotFound, match=why):
        resolve_model(str(d), tmp_path)


def test_empty_model_bin_refused(tmp_path):
    d = _folder(
        tmp_path,
        "model.bin",
        "config.json",
        "tokenizer.json",
        "vocabulary.txt",
        empty={"model.bin"},
    )
    with pytest.raises(ModelNotFound, match="empty"):
        resolve_model(str(d), tmp_path)


def test_not_a_folder(tmp_path):
    with pytest.raises(ModelNotFound, match="neither"):
        resolve_model(str(tmp_path / "large-v3"), tmp_path)


def test_compute_type_defaults():
    assert compute_type_for("cuda:0", None) == "float16"
    assert compute_type_for("cpu", None) == "int8"
    assert compute_type_for("cuda", "int8_float16") == "int8_float16"


def test_recognizer_on_a_copied_folder_and_cuda_refusal(tmp_path):
    from anima.asr.whisper import WhisperRecognizer

    src = resolve_model("tiny.en", tmp_path)
    dst = tmp_path / "copy"
    shutil.copytree(src, dst)
    rec = WhisperRecognizer(resolve_model(str(dst), tmp_path), device="auto", compute_type=None)
    assert (rec.device, rec.compute_type) == ("cpu", "int8")
    with pytest.raises(DeviceError, match="speech recogniser"):
        WhisperRecognizer(dst, device="cuda", compute_type=None)
