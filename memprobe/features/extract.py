"""Hooked, streaming extraction: each requested layer's output is reduced inside its hook, batch by batch,
and written to the activation store (see memprobe.features.layers for what a layer is)."""


from __future__ import annotations

import ctypes
import functools
import os
import sys
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
import torch
import xarray as xr
from tqdm.auto import tqdm

from memprobe import config
from memprobe.errors import DataError, ModelError
from memprobe.features.layers import CallCounter, Layer, LayerList, list_layers, network_of, take_tensor
from memprobe.features.reducers import NoReducer, Reducer, get_reducer
from memprobe.features.store import ActivationStore, StoreKey


class StimulusImages(torch.utils.data.Dataset):
    """Decoded, preprocessed images; a decode failure is returned (not raised) so the caller can name it."""

    def __init__(self, stimuli, transform):
        self.stimuli = stimuli
        self.ids = stimuli.ids
        self.transform = transform

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, index):
        try:
            return index, self.transform(self.stimuli.open(self.ids[index])), None
        except Exception as error:
            return index, None, f"{type(error).__name__}: {error}"


def collate_images(items):
    indices = [index for index, _, _ in items]
    good = [tensor for _, tensor, _ in items if tensor is not None]
    errors = {index: error for index, _, error in items if error is not None}
    batch = None
    if good:
        fill = torch.zeros_like(good[0])
        batch = torch.stack([tensor if tensor is not None else fill for _, tensor, _ in items])
    return indices, batch, errors


class _StopForward(Exception):
    """Raised from the last wanted hook: the rest of the network is not needed for this batch."""


class Activations(Mapping):
    """Layer name → ``xr.DataArray`` (``presentation`` × ``neuroid``), read lazily from the store."""

    def __init__(self, store: ActivationStore, key: StoreKey, layers: list[Layer], bad: dict[str, str]):
        self.store = store
        self.key = key
        self.layers = layers
        self.bad_stimuli = bad
        self._names = [layer.name for layer in layers]

    def __getitem__(self, layer: str) -> xr.DataArray:
        if layer not in self._names:
            raise KeyError(layer)
        return self.store.load(self.key, layer)

    def __iter__(self):
        return iter(self._names)

    def __len__(self):
        return len(self._names)


def store_key(model, stimuli, reducer: Reducer) -> StoreKey:
    preprocessing = getattr(model, "preprocessing", None)
    return StoreKey(
        model=getattr(model, "id", type(network_of(model)).__name__),
        weights=str(getattr(model, "weights_id", "unknown")),
        preprocessing=preprocessing.key() if preprocessing is not None else "none",
        stimuli=stimuli.name,
        stimuli_fingerprint=stimuli.fingerprint(),
        reducer=reducer.key(),
    )


def default_workers() -> int:
    return max(1, min(4, (os.cpu_count() or 2) // 2))


def extract(
    model,
    stimuli,
    layers: None | str | list[str] = None,
    reducer: str | Reducer = "sketch",
    store: ActivationStore | None = None,
    batch_size: int = 32,
    device: str | None = None,
    num_workers: int | None = None,
    skip_bad_images: bool = False,
    min_units: int = 24,
    progress: bool = True,
    catalogue: LayerList | None = None,
) -> Activations:
    """Reduced activations of ``layers`` for every stimulus, computed in batches and kept in ``store``.

    ``model`` is a zoo ``LoadedModel`` (``network``, ``preprocessing``, ``id``, ``weights_id``). Only the
    requested layers are hooked; each layer's batch is reduced inside its hook. Batches already in the
    store are not recomputed, and the forward pass stops after the last requested layer. An image that
    cannot be decoded raises :class:`DataError` naming it (finished batches stay on disk, a rerun resumes),
    unless ``skip_bad_images``: then its rows are NaN, and reading drops them and lists them.
    ``catalogue``: the model's :func:`list_layers`, when the caller has it already (it costs a forward pass).
    A reducer that learns from reference activations (PCA) is fitted first, on this same extractor's output.
    """
    network = network_of(model).eval()
    reducer = get_reducer(reducer)
    store = store or ActivationStore()
    device = torch.device(config.device(device))
    catalogue = catalogue or list_layers(model, min_units=min_units)
    chosen = catalogue.select(layers)
    key = store_key(model, stimuli, reducer)
    todo = [layer for layer in chosen if not store.has(key, layer.name)]
    if not todo:
        return Activations(store, key, chosen, store.bad_stimuli(key))
    if hasattr(reducer, "layers_to_fit"):
        options = dict(store=store, batch_size=batch_size, device=str(device), num_workers=num_workers,
                       progress=progress, catalogue=catalogue)
        _fit_reducer(reducer, model, todo, options)
    reductions = {layer.name: reducer.for_layer(layer.name, layer.shape, device) for layer in todo}
    keep_freed_memory()
    home = config.module_device(network)
    network.to(device)
    try:
        dims = {name: reduction.dim for name, reduction in reductions.items()}
        with full_float32(), store.writer(key, stimuli.ids, batch_size, dims) as writer:
            pending = writer.pending_batches()
            if pending:
                _run_batches(network, model, stimuli, todo, reductions, writer, pending, device, num_workers,
                             skip_bad_images, progress, catalogue)
            writer.finalize()
            bad = dict(writer.progress["bad"])
    finally:
        network.to(home)  # the caller's model stays where it was
    return Activations(store, key, chosen, bad)


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _INT_MAX = -1, -3, 2**31 - 1


@functools.cache
def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse rather than return it to the kernel at once.

    A batch's feature maps are tens of MB each, above malloc's mmap threshold (32 MB at most): each one was
    a fresh mmap whose pages fault in on first touch and are unmapped when freed, and on 2 cores half of
    the extraction's time went to the kernel (efficientnet_lite:b0 to ``_blocks.0``, 4,371 images: 55 s,
    28 s with this). Process-wide and once; the peak resident memory is the same, it is only kept between
    batches. Returns whether it took effect (False off glibc, e.g. macOS or musl)."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None)
    if not hasattr(libc, "gnu_get_libc_version"):
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, _INT_MAX)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, _INT_MAX))


@contextmanager
def full_float32():
    """No TF32 in CUDA convolutions and matrix products (PyTorch allows it in convolutions by default):
    the store does not know which device filled a batch, so the values must not depend on it."""
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    previous = cudnn.allow_tf32, matmul.allow_tf32
    cudnn.allow_tf32 = matmul.allow_tf32 = False
    try:
        yield
    finally:
        cudnn.allow_tf32, matmul.allow_tf32 = previous


def _fit_reducer(reducer, model, layers: list[Layer], extract_options: dict) -> None:
    """Fit ``reducer`` for those of ``layers`` it projects, each once per store, on the raw activations of its
    reference set. Under the store's lock for these fits, the layers still unfitted are extracted raw,
    each is fitted from its memory-mapped stored activations, and those activations are deleted (a PCA
    fit is as large); every later run and SLURM task, and a process that waited on the lock, loads the
    fits."""
    store = extract_options["store"]
    key = store_key(model, reducer.reference, NoReducer())
    names = [layer.name for layer in reducer.layers_to_fit(layers)]
    if not all(store.has_fit(key, name, reducer.fit_name) for name in names):
        with store.fitting(key):
            unfitted = [name for name in names if not store.has_fit(key, name, reducer.fit_name)]
            if unfitted:
                reference = extract(model, reducer.reference, unfitted, NoReducer(), **extract_options)
                for name in unfitted:
                    with store.fit_writer(key, name, reducer.fit_name) as folder:
                        reducer.fit(reference[name].values, folder)
                    store.delete(key, [name])
    for name in names:
        reducer.use(name, store.load_fit(key, name, reducer.fit_name))


def delete_fits(model, reducer: Reducer, store: ActivationStore, layers: list[str]) -> None:
    """Free the disk of what ``reducer`` fitted to these layers of ``model`` (nothing, for a reducer that
    does not learn); a later :func:`extract` fits them again."""
    if hasattr(reducer, "layers_to_fit"):
        reducer.forget(layers)
        store.delete_fits(store_key(model, reducer.reference, NoReducer()), layers, reducer.fit_name)


def _run_batches(
    network,
    model,
    stimuli,
    todo,
    reductions,
    writer,
    pending,
    device,
    num_workers,
    skip_bad_images,
    progress,
    catalogue,
):
    by_call = {(layer.module, layer.call_index): layer.name for layer in todo}
    last_wanted = max(catalogue.layers.index(layer) for layer in todo)
    last_key = (catalogue.layers[last_wanted].module, catalogue.layers[last_wanted].call_index)
    state = {"needed": set(), "rows": {}, "last": None}

    def on_call(module, path, k, output):
        name = by_call.get((path, k))
        if name is not None and name in state["needed"]:
            state["rows"][name] = reduce_once(reductions[name], take_tensor(output)[0])
        if (path, k) == last_key:
            raise _StopForward

    def reduce_once(reduction, tensor):
        # A container often returns its last child's output unchanged (a ResNet block its final ReLU's,
        # a stage its last block's): the same tensor object, not modified in place since (same version
        # counter), under an equivalent reduction gives the same rows, so they are reused.
        last = state["last"]
        if (reduction.same_as is not None and last is not None and last[0] is tensor
                and last[1] == tensor._version and last[2] == reduction.same_as):
            return last[3]
        rows = reduction(tensor)  # stays on the device until the batch is done: see _host_rows
        state["last"] = (tensor, tensor._version, reduction.same_as, rows)
        return rows

    transform = model.preprocessing.transform() if hasattr(model, "preprocessing") else _to_tensor()
    workers = default_workers() if num_workers is None else num_workers
    loader = torch.utils.data.DataLoader(
        StimulusImages(stimuli, transform),
        batch_sampler=[list(range(writer.batch_rows(b).start, writer.batch_rows(b).stop)) for b in pending],
        collate_fn=collate_images,
        num_workers=workers,
        pin_memory=device.type == "cuda",
    )
    ids = stimuli.ids  # a new list at each access
    host_rows = _HostRows()
    counter = CallCounter(network, on_call)
    # Each batch is written to the store in a thread (pwrite and fsync release the GIL) while the next
    # one is computed; leaving the block (an error, an interrupt) waits for the write under way.
    background = ThreadPoolExecutor(1, thread_name_prefix="memprobe-store")
    writing = None
    try:
        bar = tqdm(
            zip(pending, loader, strict=True),
            total=len(pending),
            disable=not progress,
            desc=f"extract {stimuli.name}",
            unit="batch",
        )
        for batch_number, (indices, images, errors) in bar:
            bad = _bad_images(stimuli, indices, errors, skip_bad_images)
            state["needed"] = pending[batch_number]  # read before the writes began
            state["rows"], state["last"] = {}, None
            if images is not None:
                counter.counts.clear()
                with torch.no_grad():  # not inference_mode: reduce_once needs the tensors' version counters
                    try:
                        network(images.to(device, non_blocking=True))
                    except _StopForward:
                        pass
            bad_rows = [position for position, index in enumerate(indices) if ids[index] in bad]
            computed = host_rows(state["rows"])
            rows = {}
            for name in state["needed"]:
                if images is None:  # every image of the batch failed to decode
                    rows[name] = np.full((len(indices), reductions[name].dim), np.nan, np.float32)
                elif name not in computed:
                    raise ModelError(f"layer {name} was not called when computing batch {batch_number}")
                else:
                    rows[name] = computed[name]
                    rows[name][bad_rows] = np.nan
            if writing is not None:
                writing.result()  # also frees the host buffer the next batch's rows go to
            writing = background.submit(writer.write_batch, batch_number, rows, bad)
        if writing is not None:
            writing.result()
    finally:
        background.shutdown(wait=True)
        counter.remove()


class _HostRows:
    """A batch's reduced rows of every layer → numpy arrays.

    On a GPU: one device-to-host copy per batch, into pinned memory (a copy per layer would wait for the
    GPU hundreds of times per batch, and pageable copies run at a fraction of the bus speed). Two
    buffers alternate, so one batch's rows can be written out while the next batch's arrive.
    """

    def __init__(self):
        self.buffers: list[torch.Tensor | None] = [None, None]
        self.turn = 0

    def __call__(self, rows: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        distinct = list({id(t): t for t in rows.values()}.values())  # reused rows are one tensor
        if not distinct or distinct[0].device.type == "cpu":
            return {name: t.numpy() for name, t in rows.items()}
        flat = torch.cat([t.reshape(-1).to(torch.float32) for t in distinct])
        buffer = self.buffers[self.turn]
        if buffer is None or buffer.numel() < flat.numel():
            buffer = self.buffers[self.turn] = torch.empty(flat.numel(), pin_memory=True)
        self.turn = 1 - self.turn
        together = buffer[: flat.numel()].copy_(flat).numpy()
        host, start = {}, 0
        for t in distinct:  # each layer's rows are one contiguous block of the buffer
            host[id(t)] = together[start : start + t.numel()].reshape(t.shape)
            start += t.numel()
        return {name: host[id(t)] for name, t in rows.items()}


def _bad_images(stimuli, indices, errors, skip_bad_images) -> dict[str, str]:
    bad = {}
    for index, error in errors.items():
        sid = stimuli.ids[index]
        if not skip_bad_images:
            raise DataError(
                f"image {sid!r} ({stimuli.image_ref(sid)}) of {stimuli.name} cannot be used: {error}. "
                f"Fix or drop it (StimulusSet.drop_unreadable), or pass skip_bad_images=True; "
                f"finished batches are kept and a rerun resumes"
            )
        bad[sid] = error
    return bad


def _to_tensor():
    from torchvision import transforms

    return transforms.ToTensor()
