"""ImageNet top-1 of memprobe's ``tflite:`` networks and of the TensorFlow Lite interpreter, on the same
preprocessed images: all 1,000 of ``imagenet_sample`` (label = the ``label`` column).

Per network, three runs on each batch of preprocessed images (each network's own Preprocessing):
- memprobe: float32 on dequantised weights (``load_model("tflite:<name>")``);
- the interpreter on the file as shipped (integer activations): perf/tflite_peer.py quantises the real-valued
  input with the input tensor's scale and zero point, as any caller must. Values outside that range
  saturate: the ONNX-converted ATU files' input stands for [0, 1], so their normalised images are clipped
  there, and their int8 activation ranges were calibrated on unnormalised images — their shipped top-1 is
  low for that reason, not memprobe's. MobileNetV3-Small's int8 graph (float input, quantised inside) also
  loses much of its accuracy under the interpreter; the Coral MobileNets' (quantisation-aware trained) do not;
- the interpreter on the same graph with float activations (``tflite_peer.py --float``: constants
  dequantised as memprobe does, QUANTIZE/DEQUANTIZE dropped, the interpreter's own float kernels).
Logits are read at the tensor memprobe returns (the softmax's input for the Coral MobileNets), background
class dropped. The peer runs in the side environment ``.venv-litert`` (scripts/setup_test_env.sh).

    python perf/tflite_top1.py   # writes results/benchmarks/tflite_top1.csv
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from memprobe.data import load_dataset
from memprobe.zoo import load_model
from memprobe.zoo.tflite import TFLITE_NAMES

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "results" / "benchmarks" / "tflite_top1.csv"
LITERT_PYTHON = REPO / ".venv-litert" / "bin" / "python"
PEER = REPO / "perf" / "tflite_peer.py"
BATCH = 100


def interpreter_logits(network, images: torch.Tensor, as_float: bool) -> np.ndarray:
    batch = images.numpy().transpose(0, 2, 3, 1) if network.input_channels_last else images.numpy()
    with tempfile.TemporaryDirectory() as folder:
        inputs, outputs = Path(folder) / "inputs.npy", Path(folder) / "outputs.npy"
        np.save(inputs, np.ascontiguousarray(batch, dtype=np.float32))
        command = [str(LITERT_PYTHON), str(PEER), network.source, str(inputs), str(outputs),
                   "--tensor", str(network.output_tensor)] + (["--float"] if as_float else [])
        subprocess.run(command, check=True, capture_output=True, timeout=3600)
        logits = np.load(outputs).reshape(len(batch), -1)
    return logits[:, 1:] if network.drops_background else logits


def evaluate(name: str, stimuli, labels: np.ndarray) -> dict:
    model = load_model(f"tflite:{name}")
    transform = model.preprocessing.transform()
    ours, shipped, floats = [], [], []
    for start in tqdm(range(0, len(stimuli.ids), BATCH), desc=name, unit="batch"):
        images = torch.stack([transform(stimuli.open(i)) for i in stimuli.ids[start : start + BATCH]])
        with torch.no_grad():
            ours.append(model.network(images).numpy())
        shipped.append(interpreter_logits(model.network, images, as_float=False))
        floats.append(interpreter_logits(model.network, images, as_float=True))
    ours, shipped, floats = np.concatenate(ours), np.concatenate(shipped), np.concatenate(floats)

    def top1(logits):
        return round(float((logits.argmax(1) == labels).mean() * 100), 1)

    return {
        "model": f"tflite:{name}",
        "top1_memprobe": top1(ours),
        "top1_interpreter": top1(shipped),
        "top1_interpreter_float": top1(floats),
        "top1_published": model.spec.top1,
        "same_top1_as_interpreter_float": round(float((ours.argmax(1) == floats.argmax(1)).mean() * 100), 1),
        "max_logit_diff_interpreter_float": float(np.abs(ours - floats).max()),
        "max_logit_diff_interpreter": float(np.abs(ours - shipped).max()),
        "n_images": len(labels),
    }


def main() -> None:
    torch.set_num_threads(int(os.environ.get("MEMPROBE_THREADS", "2")))
    stimuli = load_dataset("imagenet_sample").stimuli
    labels = stimuli.table["label"].to_numpy()
    table = pd.DataFrame([evaluate(name, stimuli, labels) for name in TFLITE_NAMES])
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(OUTPUT, index=False, float_format="%.6g")
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
