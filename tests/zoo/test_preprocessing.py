"""Each model's preprocessing reproduces its source library's own transform, on real images."""

from __future__ import annotations

import pretrainedmodels.utils
import pytest
import resmem
import timm.data
import torch
import torchvision.models

from memprobe.data.registry import load_dataset
from memprobe.zoo import get_spec
from memprobe.zoo.preprocessing import Preprocessing


@pytest.fixture(scope="module")
def images(data_root):
    stimuli = load_dataset("lnsim", root=data_root).stimuli
    return [stimuli.open(i) for i in stimuli.ids[:3]]


def _same(ours, theirs, images):
    for image in images:
        a, b = ours(image), theirs(image)
        assert a.shape == b.shape and torch.equal(a, b)


def test_resmem_matches_the_package_transformer(images):
    _same(get_spec("resmem").preprocessing.transform(), resmem.transformer, images)


@pytest.mark.parametrize("name", ["cafferesnet101", "bninception", "nasnetalarge", "dpn92"])
def test_cadene_models_match_transform_image(images, name):
    """BGR and 0–255 input for the Caffe ports, 0.875 resize scale, per-model mean/std."""
    settings = pretrainedmodels.pretrained_settings[name]
    theirs = pretrainedmodels.utils.TransformImage(settings.get("imagenet", settings.get("imagenet+5k")))
    _same(get_spec(f"pretrainedmodels:{name}").preprocessing.transform(), theirs, images)


@pytest.mark.parametrize("name", ["resnet50", "inception_v3"])
def test_torchvision_models_match_their_weights_transforms(images, name):
    original = next(iter(torchvision.models.get_model_weights(name)))
    _same(get_spec(f"torchvision:{name}").preprocessing.transform(), original.transforms(), images)


@pytest.mark.parametrize("name", ["resnet50.a1_in1k", "vit_small_patch16_224.augreg_in21k_ft_in1k"])
def test_timm_models_match_timm_eval_transform(images, name):
    config = timm.data.resolve_data_config(pretrained_cfg=timm.models.get_pretrained_cfg(name).to_dict())
    theirs = timm.data.create_transform(**config)
    for image in images:
        a, b = get_spec(f"timm:{name}").preprocessing.transform()(image), theirs(image)
        assert a.shape == b.shape and torch.allclose(a, b, atol=1e-6)


def test_key_changes_with_every_field_and_is_stable():
    base = Preprocessing(resize=256, crop=(224, 224))
    variants = [
        Preprocessing(resize=257, crop=(224, 224)),
        Preprocessing(resize=256, crop=(225, 225)),
        Preprocessing(resize=256, crop=(224, 224), interpolation="bicubic"),
        Preprocessing(resize=256, crop=(224, 224), color_space="BGR"),
        Preprocessing(resize=256, crop=(224, 224), input_range=(0, 255)),
        Preprocessing(resize=256, crop=(224, 224), mean=None, std=None),
        Preprocessing(resize=(256, 256), crop=(224, 224)),
    ]
    keys = {base.key(), *(v.key() for v in variants)}
    assert len(keys) == len(variants) + 1
    assert base.key() == Preprocessing(resize=256, crop=(224, 224)).key()


def test_invalid_preprocessing_is_rejected():
    with pytest.raises(ValueError, match="color_space"):
        Preprocessing(resize=256, crop=(224, 224), color_space="HSV")
    with pytest.raises(ValueError, match="input_range"):
        Preprocessing(resize=256, crop=(224, 224), input_range=(0, 2))
    with pytest.raises(ValueError, match="both mean and std"):
        Preprocessing(resize=256, crop=(224, 224), std=None)
