"""Batch normalization in float64 NumPy: the oracle of the Python API tests.

Arrays are channels-first, (N, C, ...). The formulas are those of
include/bnorm/kernels/batchnorm.hpp (biased variance to normalize, unbiased variance in
the running average, momentum = weight of the new batch).
"""
import numpy as np


def reduce_axes(x):
    """Every axis but C."""
    return (0,) + tuple(range(2, x.ndim))


def per_channel(v, x):
    """A (C,) vector shaped to broadcast against x: (1, C, 1, ...)."""
    return np.asarray(v, dtype=np.float64).reshape((1, -1) + (1,) * (x.ndim - 2))


def to_channels_last(x):
    """(N, C, ...) -> a contiguous (N, ..., C)."""
    return np.ascontiguousarray(np.moveaxis(x, 1, -1))


def to_channels_first(x):
    """(N, ..., C) -> a contiguous (N, C, ...)."""
    return np.ascontiguousarray(np.moveaxis(x, -1, 1))


def train_forward(x, weight=None, bias=None, eps=1e-5):
    """Returns y, mean, invstd, unbiased var (all float64)."""
    x = x.astype(np.float64)
    axes = reduce_axes(x)
    m = x.size // x.shape[1]
    mean = x.mean(axis=axes)
    var = ((x - per_channel(mean, x)) ** 2).mean(axis=axes)
    invstd = 1.0 / np.sqrt(var + eps)
    y = (x - per_channel(mean, x)) * per_channel(invstd, x)
    if weight is not None:
        y = y * per_channel(weight, x) + per_channel(bias, x)
    return y, mean, invstd, var * m / (m - 1)


def infer_forward(x, mean, var, weight=None, bias=None, eps=1e-5):
    x = x.astype(np.float64)
    invstd = 1.0 / np.sqrt(np.asarray(var, np.float64) + eps)
    y = (x - per_channel(mean, x)) * per_channel(invstd, x)
    if weight is not None:
        y = y * per_channel(weight, x) + per_channel(bias, x)
    return y


def backward(x, dy, mean, invstd, weight=None, frozen=False):
    """Returns dx, dweight, dbias (float64)."""
    x = x.astype(np.float64)
    dy = dy.astype(np.float64)
    axes = reduce_axes(x)
    m = x.size // x.shape[1]
    xhat = (x - per_channel(mean, x)) * per_channel(invstd, x)
    dbias = dy.sum(axis=axes)
    dweight = (dy * xhat).sum(axis=axes)
    gamma = per_channel(np.ones(x.shape[1]) if weight is None else weight, x)
    scale = gamma * per_channel(invstd, x)
    if frozen:
        dx = scale * dy
    else:
        dx = scale * (dy - per_channel(dbias, x) / m - xhat * per_channel(dweight, x) / m)
    return dx, dweight, dbias


def rel_err(actual, expected):
    """Norm-wise relative error ||actual - expected|| / ||expected|| (absolute when expected
    is zero). Norm-wise, not element-wise: elements near zero (after cancellation in
    dx = dy - mean(dy) - ...) have no meaningful element-wise relative error."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = np.linalg.norm(expected)
    diff = np.linalg.norm(actual - expected)
    return diff / scale if scale > 0 else diff
