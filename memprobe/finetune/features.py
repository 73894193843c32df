"""Frozen-backbone fast path: compute a backbone's block features once, cache them, train heads on them.

Per image the cache holds every tapped block's globally pooled output (float32, concatenated; the
ResMem-Net head's input, and the linear head's input when the last block is tapped) and optionally one
layer's full feature map (float16, AMNet's input). Images are matched by a digest of their file's
bytes, not by stimulus id or path, so any stimulus set over the same files reuses the cache. Chunks of
images are written atomically as they finish, so a killed run resumes at the first missing chunk.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from memprobe.atomic import atomic_path
from memprobe.config import cache_root
from memprobe.data.images import open_image, read_bytes
from memprobe.data.stimuli import StimulusSet
from memprobe.errors import DataError
from memprobe.finetune.heads import LayerTap, global_average_pool

CACHE_VERSION = "1"


@dataclass
class FrozenFeatures:
    """Cached features of a stimulus set, rows in the order of ``ids``."""

    ids: list[str]
    pooled: np.ndarray  # n × sum(block_channels), float32
    block_channels: list[int]
    blocks: list[str]
    spatial: np.ndarray | None  # n × C × H × W, float16
    spatial_layer: str | None

    def rows(self, ids) -> np.ndarray:
        position = {sid: i for i, sid in enumerate(self.ids)}
        missing = [sid for sid in ids if sid not in position]
        if missing:
            raise DataError(f"no cached features for stimuli {missing[:5]}; recompute the cache for this set")
        return np.array([position[sid] for sid in ids])

    @property
    def last_block(self) -> np.ndarray:
        """The last block's pooled output: what a replaced classifier of a ResNet sees."""
        return self.pooled[:, -self.block_channels[-1]:]


def weights_fingerprint(network: nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in network.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _write_npz(path: Path, **arrays):
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        np.savez(handle, **arrays)


def cache_frozen_features(
    network: nn.Module,
    transform,
    stimuli: StimulusSet,
    blocks: list[str],
    spatial_layer: str | None = None,
    model_key: str = "",
    batch_size: int = 16,
    chunk_size: int = 256,
    device: str = "cpu",
    progress: bool = True,
    cached_only: bool = False,
) -> FrozenFeatures:
    """Run ``network`` (eval mode, no augmentation) over ``stimuli`` once and cache the tapped features.

    ``cached_only``: compute nothing; return the stimuli whose chunks are already cached (e.g. while
    another process is still filling the cache). Chunks follow the images' digest order, an order
    unrelated to ids or scores, so the finished part is an unbiased subset.
    """
    digest_of_ref = {ref: hashlib.sha256(read_bytes(ref)).hexdigest()
                     for ref in stimuli.table["image"].astype(str)}
    ref_of_digest = {digest: ref for ref, digest in digest_of_ref.items()}
    digests = sorted(ref_of_digest)
    key_text = json.dumps({
        "version": CACHE_VERSION, "model": model_key, "weights": weights_fingerprint(network),
        "transform": repr(transform), "blocks": blocks, "spatial": spatial_layer,
        "images": hashlib.sha256("".join(digests).encode()).hexdigest(),
    }, sort_keys=True)
    folder = cache_root() / "finetune-features" / hashlib.sha256(key_text.encode()).hexdigest()[:20]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "key.json").write_text(key_text)

    chunks = [[ref_of_digest[d] for d in digests[start:start + chunk_size]]
              for start in range(0, len(digests), chunk_size)]
    todo = [i for i in range(len(chunks)) if not (folder / f"chunk_{i:05d}.npz").exists()]
    if todo and not cached_only:
        network = network.eval().to(device)
        pooled_tap = LayerTap(network, blocks, global_average_pool)
        spatial_tap = LayerTap(network, [spatial_layer], lambda out: out.half()) if spatial_layer else None
        bar = tqdm(total=sum(len(chunks[i]) for i in todo), desc="frozen features", disable=not progress)
        try:
            for index in todo:
                pooled_rows, spatial_rows = [], []
                for start in range(0, len(chunks[index]), batch_size):
                    refs = chunks[index][start:start + batch_size]
                    batch = torch.stack([transform(open_image(ref)) for ref in refs])
                    with torch.no_grad():
                        network(batch.to(device))
                    pooled = torch.cat([pooled_tap.outputs[b] for b in blocks], 1)
                    pooled_rows.append(pooled.float().cpu().numpy())
                    if spatial_tap:
                        spatial_rows.append(spatial_tap.outputs[spatial_layer].cpu().numpy())
                    bar.update(len(batch))
                arrays = {"pooled": np.concatenate(pooled_rows),
                          "channels": np.array([pooled_tap.outputs[b].shape[1] for b in blocks])}
                if spatial_tap:
                    arrays["spatial"] = np.concatenate(spatial_rows)
                _write_npz(folder / f"chunk_{index:05d}.npz", **arrays)
        finally:
            bar.close()
            pooled_tap.remove()
            if spatial_tap:
                spatial_tap.remove()

    done = [i for i in range(len(chunks)) if (folder / f"chunk_{i:05d}.npz").exists()]
    if not done:
        raise DataError(f"no features cached yet in {folder}; run without cached_only to compute them")
    loaded = [np.load(folder / f"chunk_{i:05d}.npz") for i in done]
    pooled_by_ref = np.concatenate([c["pooled"] for c in loaded])
    spatial_by_ref = np.concatenate([c["spatial"] for c in loaded]) if spatial_layer else None
    done_digests = [d for i in done for d in digests[i * chunk_size:(i + 1) * chunk_size]]
    row_of_digest = {digest: i for i, digest in enumerate(done_digests)}
    kept = [sid for sid, ref in zip(stimuli.ids, stimuli.table["image"], strict=True)
            if digest_of_ref[str(ref)] in row_of_digest]
    order = np.array([row_of_digest[digest_of_ref[stimuli.image_ref(sid)]] for sid in kept])
    return FrozenFeatures(
        ids=kept, pooled=pooled_by_ref[order], block_channels=loaded[0]["channels"].tolist(),
        blocks=list(blocks), spatial=spatial_by_ref[order] if spatial_by_ref is not None else None,
        spatial_layer=spatial_layer,
    )
