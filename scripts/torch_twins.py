"""PyTorch twins of bnorm's built-in models (bnorm/model/builtin), for side-by-side benchmarks
and for checking training recipes. Same layers, same order, same bias dropping before BN.
Run with Debian's /usr/bin/python3 (python3-torch)."""
import torch
from torch import nn


def _act(name):
    return {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}[name]()


def _block(layer_with_bias, make_layer, features, bn, position, activation, bn_dim):
    """layer -> [bn] -> act, or layer -> act -> [bn] (position 'after' the activation)."""
    norm = (nn.BatchNorm1d if bn_dim == 1 else nn.BatchNorm2d)(features)
    if not bn:
        return [make_layer(True), _act(activation)]
    if position == "before":
        return [make_layer(False), norm, _act(activation)]  # beta replaces the bias
    return [make_layer(True), _act(activation), norm]


def mlp_paper(bn=True, position="before"):
    layers = [nn.Flatten()]
    fan_in = 784
    for _ in range(3):
        layers += _block(None, lambda bias, f=fan_in: nn.Linear(f, 100, bias=bias), 100, bn, position,
                         "sigmoid", 1)
        fan_in = 100
    layers.append(nn.Linear(100, 10))
    return nn.Sequential(*layers)


def vgg_mini(bn=True, position="before", dropout=0.0):
    layers = []
    channels = 1
    for width in (32, 32, "pool", 64, 64, "pool"):
        if width == "pool":
            layers.append(nn.MaxPool2d(2))
            continue
        layers += _block(None, lambda bias, c=channels, w=width: nn.Conv2d(c, w, 3, padding=1, bias=bias),
                         width, bn, position, "relu", 2)
        channels = width
    layers.append(nn.Flatten())
    layers += _block(None, lambda bias: nn.Linear(64 * 7 * 7, 128, bias=bias), 128, bn, position, "relu", 1)
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(128, 10))
    return nn.Sequential(*layers)


MODELS = {"mlp-paper": mlp_paper, "vgg-mini": vgg_mini}
