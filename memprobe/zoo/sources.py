"""Model families: how each library builds a network, where its weights live, what input it wants.

Each ``*_spec(name)`` returns a ModelSpec, or raises KeyError when the family has no such model.
"""

from __future__ import annotations

import math
import warnings
from functools import partial
from unittest import mock

from torch import nn

from memprobe.zoo.preprocessing import Preprocessing
from memprobe.zoo.spec import ModelSpec
from memprobe.zoo.weights import HubCheckpoint, HuggingFaceCheckpoint, PackageFile

# ---------------------------------------------------------------- torchvision


def torchvision_names() -> list[str]:
    import torchvision.models

    return sorted(torchvision.models.list_models(module=torchvision.models))


# With pretrained weights torchvision builds these two differently from its defaults; random
# networks get the same architecture so that layers line up across weight choices.
_TORCHVISION_PRETRAINED_ARCH = {
    "inception_v3": dict(transform_input=True, aux_logits=False, init_weights=True),
    "googlenet": dict(transform_input=True, aux_logits=False, init_weights=True),
}


def _torchvision_weights(name: str, tag: str | None):
    """The weights enum member: ``tag`` (e.g. IMAGENET1K_V2) or else the first, original ImageNet
    weights (``IMAGENET1K_V1``: the ones the literature up to 2022, and the paper, used)."""
    import torchvision.models

    members = torchvision.models.get_model_weights(name)
    if tag is None:
        return next(iter(members))
    if tag not in members.__members__:
        raise KeyError(f"{name}.{tag}")
    return members[tag]


def _build_torchvision(name: str, tag: str | None, pretrained: bool) -> nn.Module:
    import torchvision.models

    if pretrained:
        return torchvision.models.get_model(name, weights=_torchvision_weights(name, tag))
    return torchvision.models.get_model(name, weights=None, **_TORCHVISION_PRETRAINED_ARCH.get(name, {}))


def torchvision_spec(name: str) -> ModelSpec:
    """``name`` is a torchvision model, optionally with a weights tag: ``resnet50.IMAGENET1K_V2``."""
    architecture, _, tag = name.partition(".")
    if architecture not in torchvision_names():
        raise KeyError(name)
    weights = _torchvision_weights(architecture, tag or None)
    transform = weights.transforms()
    preprocessing = Preprocessing(
        resize=transform.resize_size[0],
        crop=(transform.crop_size[0], transform.crop_size[0]),
        mean=tuple(transform.mean),
        std=tuple(transform.std),
        interpolation=transform.interpolation.value,
    )
    return ModelSpec(
        identifier=f"torchvision:{name}",
        source="torchvision",
        builder=partial(_build_torchvision, architecture, tag or None),
        preprocessing=preprocessing,
        top1=weights.meta["_metrics"]["ImageNet-1K"]["acc@1"],
        top1_source=f"torchvision {weights} metadata",
        weights=HubCheckpoint(weights.url, check_hash=True),
    )


# ---------------------------------------------------------------- timm


def timm_names(pattern: str = "*") -> list[str]:
    import timm

    return timm.list_models(pattern)


def _build_timm(name: str, weights: HuggingFaceCheckpoint | HubCheckpoint, pretrained: bool) -> nn.Module:
    import timm

    if not pretrained:
        return timm.create_model(name, pretrained=False)
    # Point timm at the file already found locally, so it never reaches for the network.
    return timm.create_model(name, pretrained=True, pretrained_cfg_overlay=dict(file=str(weights.locate())))


def timm_spec(name: str) -> ModelSpec:
    import timm
    from timm.data import resolve_data_config
    from timm.models import get_pretrained_cfg

    if not timm.is_model(name):
        raise KeyError(name)
    cfg = get_pretrained_cfg(name)
    if cfg is None:
        config = resolve_data_config({}, model=timm.create_model(name, pretrained=False))
        weights = None
    else:
        config = resolve_data_config(pretrained_cfg=cfg.to_dict())
        if cfg.hf_hub_id:
            filenames = (
                (cfg.hf_hub_filename,) if cfg.hf_hub_filename else ("model.safetensors", "pytorch_model.bin")
            )
            weights = HuggingFaceCheckpoint(cfg.hf_hub_id, filenames, fallback_url=cfg.url or None)
        elif cfg.url:
            weights = HubCheckpoint(cfg.url)
        else:
            weights = None
    size = config["input_size"][1:]
    scale = tuple(math.floor(s / config["crop_pct"]) for s in size)
    if config.get("crop_mode", "center") == "squash":
        resize = scale
    elif size[0] == size[1]:
        resize = scale[0]
    else:
        resize = scale
    return ModelSpec(
        identifier=f"timm:{name}",
        source="timm",
        builder=partial(_build_timm, name, weights),
        preprocessing=Preprocessing(
            resize=resize,
            crop=tuple(size),
            mean=tuple(config["mean"]),
            std=tuple(config["std"]),
            interpolation=config["interpolation"],
        ),
        top1=None,
        top1_source="not recorded (see timm's results tables)",
        weights=weights,
    )


# ---------------------------------------------------------------- pretrainedmodels (Cadene)


def pretrainedmodels_names() -> list[str]:
    """Cadene's own ports; its wrappers around torchvision models are served as ``torchvision:*``."""
    import pretrainedmodels

    return sorted(
        name
        for name in pretrainedmodels.model_names
        if not pretrainedmodels.__dict__[name].__module__.endswith("torchvision_models")
    )


def _cadene_setting(name: str) -> tuple[str, dict]:
    import pretrainedmodels

    settings = pretrainedmodels.pretrained_settings[name]
    key = "imagenet" if "imagenet" in settings else next(iter(settings))
    return key, settings[key]


def _build_pretrainedmodels(name: str, pretrained: bool) -> nn.Module:
    import pretrainedmodels

    key, setting = _cadene_setting(name)
    return pretrainedmodels.__dict__[name](
        num_classes=setting["num_classes"], pretrained=key if pretrained else None
    )


def pretrainedmodels_spec(name: str) -> ModelSpec:
    if name not in pretrainedmodels_names():
        raise KeyError(name)
    key, setting = _cadene_setting(name)
    size = max(setting["input_size"])
    # Cadene's TransformImage: resize the short side to floor(size / 0.875), center crop, BGR, range,
    # normalise.
    preprocessing = Preprocessing(
        resize=math.floor(size / 0.875),
        crop=(size, size),
        mean=tuple(float(m) for m in setting["mean"]),
        std=tuple(float(s) for s in setting["std"]),
        color_space=setting["input_space"],
        input_range=tuple(float(r) for r in setting["input_range"]),
    )
    return ModelSpec(
        identifier=f"pretrainedmodels:{name}",
        source="pretrainedmodels",
        builder=partial(_build_pretrainedmodels, name),
        preprocessing=preprocessing,
        top1_source=f"pretrainedmodels README ({key} weights)",
        weights=HubCheckpoint(setting["url"]),
    )


# ---------------------------------------------------------------- efficientnet_pytorch (lukemelas)

EFFICIENTNET_VARIANTS = ("b0", "b1", "b2", "b3", "b4", "b5", "b6", "b7")


def _build_efficientnet(variant: str, pretrained: bool) -> nn.Module:
    from efficientnet_pytorch import EfficientNet

    name = f"efficientnet-{variant}"
    return EfficientNet.from_pretrained(name) if pretrained else EfficientNet.from_name(name)


def efficientnet_spec(variant: str) -> ModelSpec:
    if variant not in EFFICIENTNET_VARIANTS:
        raise KeyError(variant)
    from efficientnet_pytorch import EfficientNet
    from efficientnet_pytorch.utils import url_map

    size = EfficientNet.get_image_size(f"efficientnet-{variant}")
    # efficientnet_pytorch's ImageNet evaluation: bicubic resize to the input size, center crop.
    return ModelSpec(
        identifier=f"efficientnet:{variant}",
        source="efficientnet",
        builder=partial(_build_efficientnet, variant),
        preprocessing=Preprocessing(resize=size, crop=(size, size), interpolation="bicubic"),
        top1_source="efficientnet_pytorch README",
        weights=HubCheckpoint(url_map[f"efficientnet-{variant}"]),
    )


# ---------------------------------------------------------------- ResMem (Needell & Bainbridge)

# ResMem's own `transformer`: Resize((256, 256)) → CenterCrop(227) → ToTensor, no normalisation.
RESMEM_PREPROCESSING = Preprocessing(resize=(256, 256), crop=(227, 227), mean=None, std=None)
RESMEM_WEIGHTS = PackageFile("resmem", "model.pt")


def _build_resmem(pretrained: bool) -> nn.Module:
    import resmem
    import torchvision.models

    if pretrained:
        with warnings.catch_warnings():
            # ResMem calls torchvision's deprecated resnet152(pretrained=False); the warning is not ours.
            warnings.simplefilter("ignore", UserWarning)
            return resmem.ResMem(pretrained=True)
    # ResMem(pretrained=False) would download ImageNet weights for its backbone; build it random instead.
    with mock.patch.object(resmem, "resnet152", lambda pretrained=False: torchvision.models.resnet152()):
        return resmem.ResMem(pretrained=False)


def _build_resmem_backbone(pretrained: bool) -> nn.Module:
    import torchvision.models

    return _build_resmem(True).features if pretrained else torchvision.models.resnet152()


def resmem_spec(name: str) -> ModelSpec:
    builders = {"resmem": _build_resmem, "resmem:resnet152": _build_resmem_backbone}
    if name not in builders:
        raise KeyError(name)
    return ModelSpec(
        identifier=name,
        source="resmem",
        builder=builders[name],
        preprocessing=RESMEM_PREPROCESSING,
        top1=None,
        top1_source="none published (ResMem predicts memorability); see perf/resmem_imagenet_top1.py",
        weights=RESMEM_WEIGHTS,
    )
