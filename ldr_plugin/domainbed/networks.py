"""Host-free featurizers/classifiers with DomainBed's architectures and shapes (no pretrained weights).

Used only when DomainBed is not importable (or ``LDR_BUILTIN_NETWORKS=1``): a 28x28 CNN -> 128-d,
an MLP for 1-D inputs, torchvision ResNet-50/18 at 224x224. Layers are created in DomainBed's
order, so the same seed gives the same initial parameters as DomainBed's own networks.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ldr_plugin.domainbed.host import import_domainbed
from ldr_plugin.errors import LdrError

# Values used when an hparams dict lacks a key the networks read (DomainBed's defaults, except
# that ResNet weights are never downloaded here).
NETWORK_DEFAULTS: dict[str, Any] = {
    "mlp_width": 256, "mlp_depth": 3, "mlp_dropout": 0.0, "nonlinear_classifier": False,
    "resnet18": False, "resnet50_augmix": False, "resnet_dropout": 0.0, "freeze_bn": False,
    "vit": False, "dinov2": False, "vit_attn_tune": False, "vit_dropout": 0.0,
}


def host_networks() -> ModuleType:
    """DomainBed's ``networks`` module when importable (unless ``LDR_BUILTIN_NETWORKS=1``), else this one."""
    host = import_domainbed("domainbed.networks") if os.environ.get("LDR_BUILTIN_NETWORKS", "") != "1" else None
    return host if host is not None else sys.modules[__name__]


def with_network_defaults(hparams: dict[str, Any]) -> dict[str, Any]:
    """hparams completed with ``NETWORK_DEFAULTS`` for the keys it lacks."""
    return {**NETWORK_DEFAULTS, **hparams}


class MLP(nn.Module):
    """DomainBed's MLP featurizer for 1-D inputs (``mlp_depth`` linear layers, ReLU, dropout)."""

    def __init__(self, n_inputs: int, n_outputs: int, hparams: dict[str, Any]) -> None:
        super().__init__()
        width = hparams["mlp_width"]
        self.input = nn.Linear(n_inputs, width)
        self.dropout = nn.Dropout(hparams["mlp_dropout"])
        self.hiddens = nn.ModuleList([nn.Linear(width, width) for _ in range(hparams["mlp_depth"] - 2)])
        self.output = nn.Linear(width, n_outputs)
        self.n_outputs = n_outputs
        self.activation = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.dropout(self.input(x)))
        for hidden in self.hiddens:
            x = F.relu(self.dropout(hidden(x)))
        return self.activation(self.output(x))


class MNIST_CNN(nn.Module):
    """DomainBed's 28x28 CNN: four 3x3 convs with GroupNorm, global average pool -> 128-d."""

    n_outputs = 128

    def __init__(self, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(input_shape[0], 64, 3, 1, padding=1)
        self.conv2 = nn.Conv2d(64, 128, 3, stride=2, padding=1)
        self.conv3 = nn.Conv2d(128, 128, 3, 1, padding=1)
        self.conv4 = nn.Conv2d(128, 128, 3, 1, padding=1)
        self.bn0 = nn.GroupNorm(8, 64)
        self.bn1 = nn.GroupNorm(8, 128)
        self.bn2 = nn.GroupNorm(8, 128)
        self.bn3 = nn.GroupNorm(8, 128)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.activation = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn0(F.relu(self.conv1(x)))
        x = self.bn1(F.relu(self.conv2(x)))
        x = self.bn2(F.relu(self.conv3(x)))
        x = self.bn3(F.relu(self.conv4(x)))
        return self.activation(self.avgpool(x).view(len(x), -1))


class ResNet(nn.Module):
    """torchvision ResNet-50 (or -18) without the fc layer, randomly initialised (no downloads)."""

    def __init__(self, input_shape: tuple[int, ...], hparams: dict[str, Any]) -> None:
        super().__init__()
        import torchvision

        if hparams["resnet18"]:
            self.network, self.n_outputs = torchvision.models.resnet18(weights=None), 512
        else:
            self.network, self.n_outputs = torchvision.models.resnet50(weights=None), 2048
        nc = input_shape[0]
        if nc != 3:
            tmp = self.network.conv1.weight.data.clone()
            self.network.conv1 = nn.Conv2d(nc, 64, kernel_size=7, stride=2, padding=3, bias=False)
            for i in range(nc):
                self.network.conv1.weight.data[:, i] = tmp[:, i % 3]
        self.network.fc = nn.Identity()
        self.hparams = hparams
        self.dropout = nn.Dropout(hparams["resnet_dropout"])
        self.activation = nn.Identity()
        if hparams["freeze_bn"]:
            self.freeze_bn()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.dropout(self.network(x)))

    def train(self, mode: bool = True) -> ResNet:
        super().train(mode)
        if self.hparams["freeze_bn"]:
            self.freeze_bn()
        return self

    def freeze_bn(self) -> None:
        for m in self.network.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()


def Featurizer(input_shape: tuple[int, ...], hparams: dict[str, Any]) -> nn.Module:
    """Pick the featurizer for ``input_shape`` as DomainBed does (1-D: MLP, 28x28: CNN, 224x224: ResNet)."""
    hparams = with_network_defaults(hparams)
    if len(input_shape) == 1:
        return MLP(input_shape[0], hparams["mlp_width"], hparams)
    if tuple(input_shape[1:3]) == (28, 28):
        return MNIST_CNN(input_shape)
    if tuple(input_shape[1:3]) == (224, 224):
        return ResNet(input_shape, hparams)
    raise LdrError(f"no built-in featurizer for input shape {tuple(input_shape)}: expected (n,), (c,28,28) "
                   "or (c,224,224)")


def Classifier(in_features: int, out_features: int, is_nonlinear: bool = False) -> nn.Module:
    """Linear head, or DomainBed's 3-layer nonlinear head."""
    if is_nonlinear:
        return nn.Sequential(
            nn.Linear(in_features, in_features // 2), nn.ReLU(),
            nn.Linear(in_features // 2, in_features // 4), nn.ReLU(),
            nn.Linear(in_features // 4, out_features))
    return nn.Linear(in_features, out_features)
