"""Parity of bnorm.BatchNorm1d/2d/3d with torch.nn.BatchNorm1d/2d/3d (float32, CPU).

For every combination of input shape ((N, C) and (N, C, L) for 1d, 2d, 3d), layout
(channels_first, channels_last: compared by transposing), affine on/off,
track_running_stats on/off and momentum 0.1 / 0.3 / None, both layers start from the same
parameters and run the same sequence: three training steps, an eval step, one more
training step; each step is a forward and a backward with a random dy. After every step
y, dx, the parameter gradients (accumulated, as in PyTorch), running_mean, running_var and
num_batches_tracked must agree. Plus the "more than 1 value per channel" error.

Without torch this file exits with 77, which CTest reports as SKIPPED (never as passed).
Run: PYTHONPATH=<build>/python /usr/bin/python3 tests/python/test_torch_parity.py -v
"""
import itertools
import sys
import unittest

import numpy as np

import bnorm
import numpy_reference as ref

try:
    import torch

    TORCH_ERROR = None
except Exception as e:  # ImportError, or a broken installation
    torch = None
    TORCH_ERROR = f"{type(e).__name__}: {e}"

# Tolerance. Both libraries compute in float32 with different operation orders (bnorm's
# reference accumulates in double, PyTorch partly in float), so each result carries some
# float32 rounding (u = 6e-8). The standard forward-error bound for a computation that
# cancels is |fl(f) - f| <= c * u * (sum of the magnitudes of the terms), not c * u * |f|:
#   y  = w*invstd*(x - mean) + b     terms ~ |w| * invstd * (|x| + |mean|)
#   dx = w*invstd*(dy - mean(dy) - xhat*mean(dy*xhat))     terms ~ |w| * invstd * |dy| * ...
#   running_mean (a mean of values of both signs)            terms ~ mean(|x|)
# (operand_terms() spells them out)
# and with m = 2 values per channel dx is pure cancellation (it is ~0 in exact arithmetic),
# so a plain relative error compares rounding noise. We therefore require, norm-wise over
# each array,
#   ||bnorm - torch|| <= TOL * max(||torch||, ||terms||)
# with TOL = 1e-5 (~170 u): this is exactly a relative error <= 1e-5 whenever nothing
# cancels, and allclose(rtol=1e-5) with an absolute tolerance scaled to the operands when
# something does. Norm-wise, because single elements near zero have no meaningful relative
# error. A wrong convention (biased vs unbiased variance, momentum meaning, frozen vs batch
# backward, missing accumulation) shows up as errors of 1e-2 or more.
TOL = 1e-5

DIMS = {  # name -> (bnorm class, torch class name, shape maker)
    "1d_nc": (bnorm.BatchNorm1d, "BatchNorm1d", lambda r, n, c: (n, c)),
    "1d_ncl": (bnorm.BatchNorm1d, "BatchNorm1d", lambda r, n, c: (n, c, r.integers(1, 9))),
    "2d": (bnorm.BatchNorm2d, "BatchNorm2d", lambda r, n, c: (n, c, *r.integers(1, 6, 2))),
    "3d": (bnorm.BatchNorm3d, "BatchNorm3d", lambda r, n, c: (n, c, *r.integers(1, 4, 3))),
}


def make_input(rng, shape, offset, scale):
    """Per-channel offset and scale (C,), so that the statistics matter."""
    return (ref.per_channel(offset, np.empty(shape)) +
            ref.per_channel(scale, np.empty(shape)) * rng.standard_normal(shape)).astype(np.float32)


def operand_terms(x, dy, mean, invstd, w_abs, frozen):
    """Magnitudes of the operands behind y, dx and dweight (float64; see TOL). With
    a = (|x| + |mean|) * invstd, the rounding error of xhat = (x - mean) * invstd is ~u*a:
      y       = w*xhat + b                         terms  |w| * a
      dweight = sum(dy * xhat)                     terms  sum(|dy| * a)
      dx      = w*invstd*(dy - mean(dy) - xhat*mean(dy*xhat)), where both xhat factors
                carry their error:                 terms  |w|*invstd*(|dy| + mean|dy|
                                                          + |xhat|*mean(|dy|*a) + a*mean(|dy*xhat|))
      frozen: dx = w*invstd*dy                     terms  |w|*invstd*|dy|"""
    pc = lambda v: ref.per_channel(v, x)
    axes = ref.reduce_axes(x)
    a = (np.abs(x) + np.abs(pc(mean))) * pc(invstd)
    xhat = np.abs((x - pc(mean)) * pc(invstd))
    abs_dy = np.abs(dy)
    y_terms = pc(w_abs) * a
    if frozen:
        dx_terms = pc(w_abs * invstd) * abs_dy
    else:
        dx_terms = pc(w_abs * invstd) * (abs_dy + pc(abs_dy.mean(axis=axes)) +
                                         xhat * pc((abs_dy * a).mean(axis=axes)) +
                                         a * pc((abs_dy * xhat).mean(axis=axes)))
    return y_terms, dx_terms, (abs_dy * a).sum(axis=axes)


@unittest.skipIf(torch is None, f"torch is not importable ({TORCH_ERROR})")
class TestTorchParity(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.set_num_threads(1)
        torch.manual_seed(0)

    def compare(self, what, actual, expected, terms=None):
        """actual: a bnorm array (or None); expected: a torch tensor (or None); terms: the
        magnitudes of the operands behind `expected` (see TOL), None when nothing cancels."""
        if expected is None:
            self.assertIsNone(actual, what)
            return
        self.assertIsNotNone(actual, what)
        expected = expected.detach().numpy().astype(np.float64)
        actual = np.asarray(actual, dtype=np.float64)
        self.assertEqual(actual.shape, expected.shape, what)
        scale = max(np.linalg.norm(expected), 0.0 if terms is None else np.linalg.norm(terms))
        err = np.linalg.norm(actual - expected) / scale if scale > 0 else np.abs(actual).max()
        self.assertLess(err, TOL, f"{what}: error {err:.3g} (relative to {scale:.3g})")

    def run_case(self, rng, dim, channels_last, affine, track, momentum):
        bnorm_cls, torch_name, shape_of = DIMS[dim]
        c = int(rng.integers(1, 7))
        eps = float(rng.choice([1e-5, 1e-3]))
        options = dict(eps=eps, momentum=momentum, affine=affine, track_running_stats=track)
        ours = bnorm_cls(c, channels_last=channels_last, **options)
        theirs = getattr(torch.nn, torch_name)(c, **options)
        if affine:
            w = rng.uniform(0.5, 2, c).astype(np.float32)
            b = rng.standard_normal(c).astype(np.float32)
            ours.weight, ours.bias = w, b
            with torch.no_grad():
                theirs.weight.copy_(torch.from_numpy(w))
                theirs.bias.copy_(torch.from_numpy(b))
        physical = ref.to_channels_last if channels_last else (lambda a: a)
        logical = ref.to_channels_first if channels_last else (lambda a: a)
        w_abs = np.abs(w.astype(np.float64)) if affine else np.ones(c)
        dw_terms = np.zeros(c)  # operand magnitudes of the accumulated weight_grad, bias_grad
        db_terms = np.zeros(c)
        rm_terms = np.zeros(c)  # operand magnitudes of running_mean
        offset, spread = rng.uniform(-5, 5, c), rng.uniform(0.1, 3, c)  # of this case's data

        for step, training in enumerate([True, True, True, False, True]):
            ours.train(training)
            theirs.train(training)
            n = int(rng.integers(2, 6))
            shape = tuple(int(v) for v in shape_of(rng, n, c))
            x = make_input(rng, shape, offset, spread)
            dy = rng.standard_normal(shape).astype(np.float32)
            at = f"step {step} ({'train' if training else 'eval'}) shape {shape}"

            x_t = torch.from_numpy(x.copy()).requires_grad_(True)
            y_t = theirs(x_t)
            y_t.backward(torch.from_numpy(dy))
            y = logical(ours(physical(x)))
            dx = logical(ours.backward(physical(dy)))

            # The statistics this step normalizes with, for the operand magnitudes.
            if training or not track:
                _, mean, invstd, _ = ref.train_forward(x, eps=eps)
            else:  # eval does not change the running statistics
                mean = theirs.running_mean.numpy().astype(np.float64)
                invstd = 1 / np.sqrt(theirs.running_var.numpy().astype(np.float64) + eps)
            y_terms, dx_terms, dw_step = operand_terms(x, dy, mean, invstd, w_abs,
                                                       frozen=not training and track)
            dw_terms += dw_step
            db_terms += np.abs(dy).sum(axis=ref.reduce_axes(x))
            if training and track:  # running = (1 - f) * running + f * batch mean
                f = momentum if momentum is not None else 1 / int(theirs.num_batches_tracked)
                rm_terms = (1 - f) * rm_terms + f * np.abs(x).mean(axis=ref.reduce_axes(x))

            self.compare(f"{at}: y", y, y_t, y_terms)
            self.compare(f"{at}: dx", dx, x_t.grad, dx_terms)
            self.compare(f"{at}: weight_grad", ours.weight_grad,
                         theirs.weight.grad if affine else None, dw_terms)
            self.compare(f"{at}: bias_grad", ours.bias_grad,
                         theirs.bias.grad if affine else None, db_terms)
            self.compare(f"{at}: running_mean", ours.running_mean, theirs.running_mean, rm_terms)
            self.compare(f"{at}: running_var", ours.running_var, theirs.running_var)
            if track:
                self.assertEqual(ours.num_batches_tracked, int(theirs.num_batches_tracked), at)
            else:
                self.assertIsNone(ours.num_batches_tracked)
                self.assertIsNone(theirs.num_batches_tracked)

    def test_parity(self):
        rng = np.random.default_rng(2024)
        count = 0
        for dim, channels_last, affine, track, momentum in itertools.product(
                DIMS, [False, True], [True, False], [True, False], [0.1, 0.3, None]):
            with self.subTest(dim=dim, channels_last=channels_last, affine=affine,
                              track_running_stats=track, momentum=momentum):
                self.run_case(rng, dim, channels_last, affine, track, momentum)
                count += 1
        self.assertEqual(count, 4 * 2 * 2 * 2 * 3)

    def test_constant_channel(self):
        # Zero batch variance: invstd = 1/sqrt(eps), xhat = 0 (y = bias), still no NaN.
        x = np.random.default_rng(1).standard_normal((4, 3, 2, 2)).astype(np.float32)
        x[:, 1] = 2.5
        dy = np.random.default_rng(2).standard_normal(x.shape).astype(np.float32)
        ours, theirs = bnorm.BatchNorm2d(3), torch.nn.BatchNorm2d(3)
        x_t = torch.from_numpy(x.copy()).requires_grad_(True)
        y_t = theirs(x_t)
        y_t.backward(torch.from_numpy(dy))
        _, mean, invstd, _ = ref.train_forward(x)  # invstd = 316 for the constant channel
        y_terms, dx_terms, _ = operand_terms(x, dy, mean, invstd, np.ones(3), frozen=False)
        self.compare("y", ours(x), y_t, y_terms)
        self.compare("dx", ours.backward(dy), x_t.grad, dx_terms)
        self.compare("running_var", ours.running_var, theirs.running_var)

    def test_one_value_per_channel(self):
        for bnorm_cls, torch_cls, shape in [
                (bnorm.BatchNorm1d, torch.nn.BatchNorm1d, (1, 3)),
                (bnorm.BatchNorm1d, torch.nn.BatchNorm1d, (1, 3, 1)),
                (bnorm.BatchNorm2d, torch.nn.BatchNorm2d, (1, 3, 1, 1)),
                (bnorm.BatchNorm3d, torch.nn.BatchNorm3d, (1, 3, 1, 1, 1))]:
            for track in [True, False]:
                with self.subTest(shape=shape, track_running_stats=track):
                    x = np.ones(shape, np.float32)
                    ours = bnorm_cls(3, track_running_stats=track)
                    theirs = torch_cls(3, track_running_stats=track)
                    with self.assertRaisesRegex(ValueError, "more than 1 value per channel"):
                        theirs(torch.from_numpy(x))
                    with self.assertRaisesRegex(ValueError, "more than 1 value per channel"):
                        ours(x)
                    # Eval mode: fine with running statistics; without them both still
                    # normalize with batch statistics and so still refuse.
                    ours.eval()
                    theirs.eval()
                    if track:
                        self.compare("eval y", ours(x), theirs(torch.from_numpy(x)))
                    else:
                        with self.assertRaises(ValueError):
                            theirs(torch.from_numpy(x))
                        with self.assertRaises(ValueError):
                            ours(x)


if __name__ == "__main__":
    if torch is None:
        print(f"SKIPPED: torch is not importable ({TORCH_ERROR})", file=sys.stderr)
        sys.exit(77)
    unittest.main()
