"""Named fine-tuning recipes: optimiser, learning-rate schedule, batch size, stopping rule.

Every schedule steps once per epoch, so ``recipe.lr_at(epoch)`` is the learning rate the whole of
``epoch`` (0-based) trains with, and ``recipe.backbone_frozen_at(epoch)`` says whether the backbone
trains in it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from memprobe.errors import MemprobeError


@dataclass(frozen=True)
class Phase:
    """A stretch of epochs whose learning rate anneals from ``lr_start`` to ``lr_end`` (cosine)."""

    epochs: int
    lr_start: float
    lr_end: float
    backbone_frozen: bool


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    optimizer: str  # "sgd-nesterov" or "adam"
    lr: float
    batch_size: int
    max_epochs: int
    head: str  # default head: "linear", "resmemnet" or "amnet"
    momentum: float = 0.9
    weight_decay: float = 0.0
    step_size: int | None = None  # StepLR: lr × gamma every step_size epochs
    gamma: float = 0.1
    phases: tuple[Phase, ...] = field(default_factory=tuple)
    patience: int | None = None  # early stopping on validation Spearman; None trains max_epochs
    augment: bool = True
    clip_grad_norm: float | None = None  # the gradients' global L2 norm capped at this before each step
    folds: int = 5
    attention_penalty: float = 0.0  # AMNet's weight on the cumulative-attention penalty

    def lr_at(self, epoch: int) -> float:
        if self.phases:
            phase, offset = self._phase_at(epoch)
            if phase.epochs == 1:
                return phase.lr_start
            progress = offset / (phase.epochs - 1)
            return phase.lr_end + (phase.lr_start - phase.lr_end) * (1 + math.cos(math.pi * progress)) / 2
        if self.step_size:
            return self.lr * self.gamma ** (epoch // self.step_size)
        return self.lr

    def backbone_frozen_at(self, epoch: int) -> bool:
        return self._phase_at(epoch)[0].backbone_frozen if self.phases else False

    def _phase_at(self, epoch: int) -> tuple[Phase, int]:
        start = 0
        for phase in self.phases:
            if epoch < start + phase.epochs:
                return phase, epoch - start
            start += phase.epochs
        return self.phases[-1], self.phases[-1].epochs - 1

    def build_optimizer(self, parameters) -> torch.optim.Optimizer:
        first_lr = self.lr_at(0)
        if self.optimizer == "sgd-nesterov":
            return torch.optim.SGD(parameters, lr=first_lr, momentum=self.momentum, nesterov=True,
                                   weight_decay=self.weight_decay)
        if self.optimizer == "adam":
            return torch.optim.Adam(parameters, lr=first_lr, weight_decay=self.weight_decay)
        raise MemprobeError(f"recipe {self.name!r}: unknown optimizer {self.optimizer!r}")

    def build_scheduler(self, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
        """Stepped once at the end of every epoch."""
        if self.step_size and not self.phases:
            return torch.optim.lr_scheduler.StepLR(optimizer, step_size=self.step_size, gamma=self.gamma)
        first_lr = self.lr_at(0)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: self.lr_at(epoch) / first_lr)

    def replace(self, **changes) -> Recipe:
        from dataclasses import replace

        return replace(self, **changes)


PAPER = Recipe(
    name="paper",
    description=(
        "Harada & Sakai: the 1000-way classifier replaced by one output unit; SGD with Nesterov momentum "
        "0.9, batch 32, lr 1e-3 divided by 10 every 10 epochs (StepLR), at most 100 epochs, early stopping "
        "after 10 epochs without a better validation Spearman; ImageNet augmentation (RandomResizedCrop + "
        "horizontal flip) at the model's input size and normalisation; 5 folds."
    ),
    optimizer="sgd-nesterov", lr=1e-3, batch_size=32, max_epochs=100, head="linear",
    step_size=10, gamma=0.1, patience=10, augment=True,
)

RESMEMNET = Recipe(
    name="resmemnet",
    description=(
        "Praveen et al. 2021 (ResMem-Net): ResNet-50 backbone with the per-block LSTM head; Adam, weight "
        "decay 1e-4, batch 24, 224x224; backbone frozen for 10 epochs (lr 1e-2 -> 1e-3), then unfrozen for "
        "15 epochs (1e-3 -> 1e-4), then 15 more (1e-4 -> 1e-5); 40 epochs, no early stopping. Each phase "
        "is one annealing cycle (cosine from its start rate at its first epoch to its end rate at its "
        "last), stepped per epoch with LambdaLR."
    ),
    optimizer="adam", lr=1e-2, batch_size=24, max_epochs=40, head="resmemnet", weight_decay=1e-4,
    phases=(Phase(10, 1e-2, 1e-3, True), Phase(15, 1e-3, 1e-4, False), Phase(15, 1e-4, 1e-5, False)),
    patience=None, augment=True,
)

AMNET = Recipe(
    name="amnet",
    description=(
        "Fajtl et al. 2018 (AMNet): frozen ResNet-50 layer3 features, soft attention + LSTM (hidden 1024) "
        "for 3 steps, per-step scores summed; loss = MSE + 1e-4 * sum_i (1 - sum_t alpha_ti)^2 (see "
        "memprobe.finetune.heads.attention_penalty); Adam lr 1e-3 constant; batch 32 and at most 50 "
        "epochs with early stopping patience 10 (our choices)."
    ),
    optimizer="adam", lr=1e-3, batch_size=32, max_epochs=50, head="amnet",
    patience=10, augment=False, attention_penalty=1e-4,
)

RECIPES = {recipe.name: recipe for recipe in (PAPER, RESMEMNET, AMNET)}


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise MemprobeError(f"unknown recipe {name!r}; choose one of {sorted(RECIPES)}") from None
