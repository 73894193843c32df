"""The registry: identifiers, the paper64 set, published top-1 facts, preprocessing per source."""

from __future__ import annotations

import pytest
import torchvision.models

import memprobe
from memprobe.errors import ModelError
from memprobe.zoo import get_spec, list_models, model_set
from memprobe.zoo.paper64 import PAPER64


def test_paper64_has_the_64_models_of_table_s1_each_resolvable():
    ids = model_set("paper64")
    assert len(ids) == 64 and len(set(ids)) == 64
    assert len({entry.paper_name for entry in PAPER64}) == 64
    sources = {get_spec(i).source for i in ids}
    assert sources == {"torchvision", "pretrainedmodels", "cornet", "efficientnet"}
    assert set(ids) <= set(list_models())


def test_paper64_torchvision_top1_are_torchvision_published_numbers():
    for entry in PAPER64:
        if entry.identifier.startswith("torchvision:"):
            name = entry.identifier.removeprefix("torchvision:")
            original = next(iter(torchvision.models.get_model_weights(name)))
            assert entry.top1 == original.meta["_metrics"]["ImageNet-1K"]["acc@1"], entry


def test_paper64_top1_reaches_the_spec_and_is_plausible():
    spec = get_spec("pretrainedmodels:dpn92")
    assert spec.top1 == 79.400 and spec.paper_name == "DPN92" and "README" in spec.top1_source
    for entry in PAPER64:
        assert entry.top1 is None or 55 < entry.top1 < 84, entry


def test_resmem_has_no_published_top1():
    assert get_spec("resmem").top1 is None and get_spec("resmem:resnet152").top1 is None


def test_list_models_patterns_and_timm_on_demand():
    assert list_models("cornet:*") == ["cornet:Z", "cornet:R", "cornet:RT", "cornet:S"]
    assert "torchvision:resnet50" in list_models("torchvision:resnet*")
    assert not any(i.startswith("timm:") for i in list_models())
    timm_resnets = list_models("timm:resnet5*")
    assert "timm:resnet50" in timm_resnets and all(i.startswith("timm:resnet5") for i in timm_resnets)
    # Pretrained tags resolve too.
    assert get_spec("timm:resnet50.a1_in1k").identifier == "timm:resnet50.a1_in1k"


def test_unknown_model_suggests_close_names():
    with pytest.raises(ModelError, match="torchvision:resnet50") as error:
        get_spec("torchvision:resnet05")
    assert "unknown model 'torchvision:resnet05'" in str(error.value)
    with pytest.raises(ModelError, match=r"Did you mean: timm:efficientnet_b\d"):
        get_spec("timm:efficientnet_bo")
    with pytest.raises(ModelError, match="cornet:S"):
        get_spec("cornet:SS")
    with pytest.raises(ModelError, match="unknown model set 'paper65'"):
        model_set("paper65")


def test_torchvision_tag_picks_other_weights_and_their_numbers():
    v1, v2 = get_spec("torchvision:resnet50"), get_spec("torchvision:resnet50.IMAGENET1K_V2")
    assert v1.top1 == 76.13 and v2.top1 == 80.858
    assert v1.weights.url != v2.weights.url
    assert v2.preprocessing.resize == 232
    with pytest.raises(ModelError):
        get_spec("torchvision:resnet50.NO_SUCH_WEIGHTS")


def test_preprocessing_follows_each_source():
    inception = get_spec("torchvision:inception_v3").preprocessing
    assert (inception.resize, inception.crop) == (342, (299, 299))
    caffe = get_spec("pretrainedmodels:cafferesnet101").preprocessing
    assert caffe.color_space == "BGR" and caffe.input_range == (0, 255) and caffe.std == (1.0, 1.0, 1.0)
    nasnet = get_spec("pretrainedmodels:nasnetalarge").preprocessing
    assert (nasnet.resize, nasnet.crop, nasnet.mean) == (378, (331, 331), (0.5, 0.5, 0.5))
    effnet = get_spec("efficientnet:b4").preprocessing
    assert (effnet.crop, effnet.interpolation) == ((380, 380), "bicubic")
    timm_vit = get_spec("timm:vit_small_patch16_224.augreg_in21k_ft_in1k").preprocessing
    assert timm_vit.mean == (0.5, 0.5, 0.5) and timm_vit.interpolation == "bicubic" and timm_vit.resize == 248
    resmem = get_spec("resmem").preprocessing
    assert (resmem.resize, resmem.crop, resmem.mean) == ((256, 256), (227, 227), None)


def test_package_exports_zoo_lazily():
    assert memprobe.load_model is memprobe.zoo.load_model
    assert memprobe.list_models("cornet:Z") == ["cornet:Z"]
