"""From a model to per-layer features: what the layers are (``layers``), how each layer's output is shrunk
inside its hook (``reducers``, named by a ``ReducerSpec``), where the results live (``store``), and the
streaming extraction that ties them together (``extract``)."""

from memprobe.features.extract import Activations, delete_fits, extract, store_key
from memprobe.features.layers import Layer, LayerList, layer_name, list_layers
from memprobe.features.reducer_spec import ReducerSpec
from memprobe.features.reducers import Reducer, get_reducer
from memprobe.features.store import ActivationStore, StoreKey

__all__ = [
    "ActivationStore",
    "Activations",
    "Layer",
    "LayerList",
    "Reducer",
    "ReducerSpec",
    "StoreKey",
    "delete_fits",
    "extract",
    "get_reducer",
    "layer_name",
    "list_layers",
    "store_key",
]
