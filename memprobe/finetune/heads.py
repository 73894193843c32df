"""Memorability heads: one output unit in place of the classifier, ResMem-Net's per-block LSTM, AMNet.

The ResMem-Net and AMNet heads also work on cached backbone features (``ResMemNetHead``,
``AMNetHead``), which is how a frozen backbone is trained cheaply (see ``memprobe.finetune.features``).
"""

from __future__ import annotations

import torch
from torch import nn

from memprobe.config import module_device
from memprobe.errors import ModelError
from memprobe.features.layers import layer_name

# Attribute names under which torchvision, timm, Cadene's pretrainedmodels and EfficientNet(-Lite) keep the
# final classifier.
CLASSIFIER_ATTRIBUTES = ("fc", "classifier", "last_linear", "head", "_fc")
BLOCK_CLASS_NAMES = ("Bottleneck", "BasicBlock")


def _final_linear(module: nn.Module, path: str) -> tuple[str, nn.Linear] | None:
    if isinstance(module, nn.Linear):
        return path, module
    linears = [(f"{path}.{name}", m) for name, m in module.named_modules() if isinstance(m, nn.Linear)]
    return linears[-1] if linears else None


def find_classifier(network: nn.Module) -> tuple[str, nn.Linear]:
    """The module path and module of the final classification layer."""
    if hasattr(network, "get_classifier") and isinstance(network.get_classifier(), nn.Linear):
        classifier = network.get_classifier()
        return next(name for name, m in network.named_modules() if m is classifier), classifier
    for attribute in CLASSIFIER_ATTRIBUTES:
        module = getattr(network, attribute, None)
        if isinstance(module, nn.Module):
            found = _final_linear(module, attribute)
            if found:
                return found
    # Converted graphs (onnx2torch) name modules after their nodes (``fc_Gemm``) and register them in
    # graph order: there the last module with weights is the classifier when it is a linear one.
    weighted = [(name, m) for name, m in network.named_modules()
                if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))]
    if weighted and isinstance(weighted[-1][1], nn.Linear):
        return weighted[-1]
    raise ModelError(
        f"{type(network).__name__}: no final linear classifier under {CLASSIFIER_ATTRIBUTES}, timm's "
        "get_classifier() or as its last layer with weights; replace its output layer yourself or add its "
        "name to CLASSIFIER_ATTRIBUTES"
    )


def replace_classifier(network: nn.Module, outputs: int = 1) -> str:
    """Swap the classifier for a fresh ``outputs``-unit linear layer in place; returns its module path."""
    if hasattr(network, "reset_classifier") and hasattr(network, "get_classifier"):
        network.reset_classifier(outputs)
        return find_classifier(network)[0]
    path, old = find_classifier(network)
    parent_path, _, name = path.rpartition(".")
    parent = network.get_submodule(parent_path) if parent_path else network
    setattr(parent, name, nn.Linear(old.in_features, outputs))
    return path


def execution_order(network: nn.Module, example: torch.Tensor) -> list[str]:
    """Leaf module paths in the order a forward pass calls them (repeats included)."""
    order: list[str] = []
    handles = [
        module.register_forward_hook(lambda *_, name=name: order.append(name))
        for name, module in network.named_modules()
        if name and not list(module.children())
    ]
    try:
        with torch.no_grad():
            network(example)
    finally:
        for handle in handles:
            handle.remove()
    return order


def penultimate_layer(network: nn.Module, example: torch.Tensor) -> str:
    """The layer whose output feeds the classifier, as a layer name (``path`` or ``path@k``)."""
    classifier_path, _ = find_classifier(network)
    order = execution_order(network, example)
    position = len(order) - 1 - order[::-1].index(classifier_path)
    if position == 0:
        raise ModelError(f"{type(network).__name__}: nothing runs before the classifier {classifier_path!r}")
    previous = order[position - 1]
    return layer_name(previous, order[:position].count(previous), order.count(previous))


def find_blocks(network: nn.Module) -> list[str]:
    """Module paths of the residual blocks (outermost Bottleneck/BasicBlock modules), in forward order."""
    blocks: list[str] = []
    for name, module in network.named_modules():
        if type(module).__name__ in BLOCK_CLASS_NAMES and not any(name.startswith(f"{b}.") for b in blocks):
            blocks.append(name)
    if not blocks:
        raise ModelError(
            f"{type(network).__name__} has no {'/'.join(BLOCK_CLASS_NAMES)} modules; pass the block module "
            "paths explicitly (blocks=[...])"
        )
    return blocks


class LayerTap:
    """Forward hooks that keep each named module's output, reduced by ``reduce`` as it is produced."""

    def __init__(self, network: nn.Module, paths: list[str], reduce=lambda output: output):
        self.outputs: dict[str, torch.Tensor] = {}
        self._handles = []
        for path in paths:
            try:
                module = network.get_submodule(path)
            except AttributeError:
                raise ModelError(f"{type(network).__name__} has no module {path!r}") from None
            self._handles.append(module.register_forward_hook(
                lambda _m, _i, output, path=path: self.outputs.__setitem__(path, reduce(output))
            ))

    def remove(self):
        for handle in self._handles:
            handle.remove()


def global_average_pool(output: torch.Tensor) -> torch.Tensor:
    return output.mean(dim=(2, 3))


class ResMemNetHead(nn.Module):
    """Per block: 1x1 conv of its pooled output to 128 channels → one LSTM step → last hidden → linear.

    Input: the blocks' globally pooled outputs concatenated along the channel axis (B × sum(channels)).
    """

    def __init__(self, block_channels: list[int], embedding: int = 128, hidden: int = 128):
        super().__init__()
        self.block_channels = list(block_channels)
        self.projections = nn.ModuleList(nn.Conv2d(c, embedding, kernel_size=1) for c in block_channels)
        self.lstm = nn.LSTM(embedding, hidden, batch_first=True)
        self.final_hidden = nn.Identity()  # a named layer for the final hidden state (the penultimate layer)
        self.output = nn.Linear(hidden, 1)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        per_block = torch.split(pooled, self.block_channels, dim=1)
        steps = [project(block[:, :, None, None]).flatten(1)
                 for project, block in zip(self.projections, per_block, strict=True)]
        sequence = torch.stack(steps, dim=1)
        _, (hidden, _) = self.lstm(sequence)
        return self.output(self.final_hidden(hidden[-1])).squeeze(1)


def probe_shapes(network: nn.Module, paths: list[str], input_size: int) -> dict[str, tuple[int, ...]]:
    """Output shape (without batch) of each module for one ``input_size``² RGB image."""
    tap = LayerTap(network, paths)
    try:
        was_training = network.training
        network.eval()
        with torch.no_grad():
            network(torch.zeros(1, 3, input_size, input_size, device=module_device(network)))
        network.train(was_training)
    finally:
        tap.remove()
    return {path: tuple(tap.outputs[path].shape[1:]) for path in paths}


class ResMemNet(nn.Module):
    """A backbone with the ResMem-Net head on its residual blocks; the backbone's classifier is dropped."""

    def __init__(self, backbone: nn.Module, blocks: list[str] | None = None, input_size: int = 224):
        super().__init__()
        self.blocks = blocks or find_blocks(backbone)
        classifier_path, _ = find_classifier(backbone)
        parent_path, _, name = classifier_path.rpartition(".")
        setattr(backbone.get_submodule(parent_path) if parent_path else backbone, name, nn.Identity())
        shapes = probe_shapes(backbone, self.blocks, input_size)
        self.backbone = backbone
        self.head = ResMemNetHead([shapes[b][0] for b in self.blocks])
        self._tap = LayerTap(backbone, self.blocks, global_average_pool)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.backbone(images)
        return self.head(torch.cat([self._tap.outputs[b] for b in self.blocks], dim=1))


class AMNetHead(nn.Module):
    """Soft attention over a feature map's locations, conditioned on the previous LSTM hidden state.

    Each of ``steps`` LSTM steps attends (alpha = softmax_i w·tanh(W_a a_i + W_h h_{t-1})), reads the
    attended feature vector, updates the LSTM and emits a score; the prediction is the sum of the
    scores. The LSTM state starts from the mean feature vector (Show, Attend and Tell's initialisation).
    ``self.attention`` keeps the last forward's alphas (B × steps × locations).
    """

    def __init__(self, channels: int = 1024, hidden: int = 1024, attention: int = 512, steps: int = 3):
        super().__init__()
        self.steps = steps
        self.init_hidden = nn.Linear(channels, hidden)
        self.init_cell = nn.Linear(channels, hidden)
        self.attend_features = nn.Linear(channels, attention)
        self.attend_hidden = nn.Linear(hidden, attention, bias=False)
        self.attention_score = nn.Linear(attention, 1)
        self.cell = nn.LSTMCell(channels, hidden)
        self.score = nn.Linear(hidden, 1)
        self.attention: torch.Tensor | None = None

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        locations = feature_map.float().flatten(2).transpose(1, 2)  # B × L × C
        mean = locations.mean(dim=1)
        hidden, cell = torch.tanh(self.init_hidden(mean)), torch.tanh(self.init_cell(mean))
        keys = self.attend_features(locations)
        total = torch.zeros(len(locations), device=locations.device)
        alphas = []
        for _ in range(self.steps):
            energy = self.attention_score(torch.tanh(keys + self.attend_hidden(hidden)[:, None])).squeeze(2)
            alpha = torch.softmax(energy, dim=1)
            context = torch.bmm(alpha[:, None], locations).squeeze(1)
            hidden, cell = self.cell(context, (hidden, cell))
            total = total + self.score(hidden).squeeze(1)
            alphas.append(alpha)
        self.attention = torch.stack(alphas, dim=1)
        return total


def attention_penalty(attention: torch.Tensor) -> torch.Tensor:
    """Σ_i (1 − Σ_t α_ti)², averaged over the batch (Show, Attend and Tell's doubly stochastic term).

    Softmax fixes the ℓ1 norm of the cumulative attention s_i = Σ_t α_ti to the number of steps T, so
    the term equals L − 2T + ‖s‖²: it penalises the ℓ2 norm of s at fixed ℓ1 norm, i.e. attention that
    piles onto few locations across the steps.
    """
    return ((1 - attention.sum(dim=1)) ** 2).sum(dim=1).mean()


class AMNet(nn.Module):
    """A frozen backbone tapped at ``layer`` (ResNet-50 ``layer3``: 14×14×1024 at 224) with the AMNet head."""

    def __init__(self, backbone: nn.Module, layer: str = "layer3", input_size: int = 224):
        super().__init__()
        self.layer = layer
        channels = probe_shapes(backbone, [layer], input_size)[layer][0]
        for parameter in backbone.parameters():
            parameter.requires_grad_(False)
        self.backbone = backbone
        self.head = AMNetHead(channels=channels)
        self._tap = LayerTap(backbone, [layer])

    @property
    def attention(self) -> torch.Tensor | None:
        return self.head.attention

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.backbone(images)
        return self.head(self._tap.outputs[self.layer])
