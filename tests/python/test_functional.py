"""Tests of bnorm.functional (the kernels as functions) against the float64 NumPy oracle,
including the synchronized-BN path moments -> moments_merge -> moments_finalize ->
batch_norm_infer(invstd=...).

Run: PYTHONPATH=<build>/python /usr/bin/python3 tests/python/test_functional.py -v
(CTest: python.functional).
"""
import unittest

import numpy as np

import bnorm
import bnorm.functional as F
import numpy_reference as ref

TOL = 1e-5  # norm-wise relative error of float32 results; see test_api.py

SHAPES = [(6, 4), (3, 4, 5), (2, 4, 3, 5), (2, 4, 2, 3, 2)]


def randn(rng, *shape, offset=0.0, scale=1.0):
    return (offset + scale * rng.standard_normal(shape)).astype(np.float32)


class TestTrainInfer(unittest.TestCase):
    def test_train_against_numpy(self):
        rng = np.random.default_rng(10)
        for shape in SHAPES:
            for channels_last in [False, True]:
                with self.subTest(shape=shape, channels_last=channels_last):
                    x = randn(rng, *shape, offset=-3.0, scale=2.0)
                    w, b = randn(rng, 4), randn(rng, 4)
                    arg = ref.to_channels_last(x) if channels_last else x
                    y, save_mean, save_invstd = F.batch_norm_train(arg, w, b, channels_last=channels_last)
                    if channels_last:
                        y = ref.to_channels_first(y)
                    y_ref, mean, invstd, _ = ref.train_forward(x, w, b)
                    self.assertLess(ref.rel_err(y, y_ref), TOL)
                    self.assertLess(ref.rel_err(save_mean, mean), TOL)
                    self.assertLess(ref.rel_err(save_invstd, invstd), TOL)
                    self.assertEqual((save_mean.dtype, save_mean.shape), (np.float32, (4,)))

    def test_running_update_in_place(self):
        rng = np.random.default_rng(11)
        x = randn(rng, 4, 3, 5, offset=1.0)
        _, mean, _, var_unbiased = ref.train_forward(x)
        for momentum, nbt, f in [(0.1, None, 0.1), (0.3, 5, 0.3), (None, 4, 0.25)]:
            with self.subTest(momentum=momentum, num_batches_tracked=nbt):
                rm = np.full(3, 0.5, np.float32)
                rv = np.full(3, 2.0, np.float32)
                F.batch_norm_train(x, running_mean=rm, running_var=rv, momentum=momentum,
                                   num_batches_tracked=nbt)
                self.assertLess(ref.rel_err(rm, 0.5 * (1 - f) + f * mean), TOL)
                self.assertLess(ref.rel_err(rv, 2.0 * (1 - f) + f * var_unbiased), TOL)

    def test_running_argument_errors(self):
        x = np.ones((4, 3), np.float32)
        x[0] = 0
        rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
        with self.assertRaisesRegex(ValueError, "num_batches_tracked"):
            F.batch_norm_train(x, running_mean=rm, running_var=rv, momentum=None)
        with self.assertRaisesRegex(ValueError, "both"):
            F.batch_norm_train(x, running_mean=rm)
        with self.assertRaisesRegex(ValueError, "float64"):
            F.batch_norm_train(x, running_mean=np.zeros(3), running_var=rv)
        read_only = rv.copy()
        read_only.setflags(write=False)
        with self.assertRaisesRegex(ValueError, "writable"):
            F.batch_norm_train(x, running_mean=rm, running_var=read_only)
        with self.assertRaisesRegex(ValueError, "contiguous"):
            F.batch_norm_train(x, running_mean=rm, running_var=np.ones(6, np.float32)[::2])
        with self.assertRaisesRegex(ValueError, r"\(3,\)"):
            F.batch_norm_train(x, running_mean=rm, running_var=np.ones(4, np.float32))
        with self.assertRaisesRegex(ValueError, "momentum"):
            F.batch_norm_train(x, running_mean=rm, running_var=rv, momentum=2.0)

    def test_weight_or_bias_alone(self):
        rng = np.random.default_rng(12)
        x, w = randn(rng, 5, 2, 3), randn(rng, 2)
        y_w, _, _ = F.batch_norm_train(x, weight=w)
        y_ref = ref.train_forward(x, w, np.zeros(2))[0]
        self.assertLess(ref.rel_err(y_w, y_ref), TOL)
        y_b, _, _ = F.batch_norm_train(x, bias=w)
        self.assertLess(ref.rel_err(y_b, ref.train_forward(x, np.ones(2), w)[0]), TOL)

    def test_input_errors(self):
        with self.assertRaisesRegex(ValueError, "more than 1 value per channel"):
            F.batch_norm_train(np.ones((1, 3), np.float32))
        with self.assertRaisesRegex(ValueError, "float64"):
            F.batch_norm_train(np.ones((2, 3)))
        with self.assertRaisesRegex(ValueError, r"\(3,\)"):
            F.batch_norm_train(np.ones((2, 3), np.float32), weight=np.ones(3, np.float32),
                               bias=np.ones(2, np.float32))
        with self.assertRaises(ValueError):
            F.batch_norm_train(np.ones((2,), np.float32))

    def test_infer(self):
        rng = np.random.default_rng(13)
        x = randn(rng, 2, 3, 4, 4)
        rm, rv = randn(rng, 3), (0.2 + rng.random(3)).astype(np.float32)
        w, b = randn(rng, 3), randn(rng, 3)
        y = F.batch_norm_infer(x, rm, rv, w, b, eps=1e-3)
        self.assertLess(ref.rel_err(y, ref.infer_forward(x, rm, rv, w, b, eps=1e-3)), TOL)
        y_last = F.batch_norm_infer(ref.to_channels_last(x), rm, rv, w, b, eps=1e-3, channels_last=True)
        self.assertLess(ref.rel_err(ref.to_channels_first(y_last), y), TOL)
        invstd = (1 / np.sqrt(rv.astype(np.float64) + 1e-3)).astype(np.float32)
        y_invstd = F.batch_norm_infer(x, rm, weight=w, bias=b, invstd=invstd)
        self.assertLess(ref.rel_err(y_invstd, y), TOL)
        with self.assertRaisesRegex(ValueError, "exactly one"):
            F.batch_norm_infer(x, rm)
        with self.assertRaisesRegex(ValueError, "exactly one"):
            F.batch_norm_infer(x, rm, rv, invstd=invstd)
        # One value per channel is fine for inference.
        F.batch_norm_infer(np.ones((1, 3), np.float32), rm, rv)


class TestBackward(unittest.TestCase):
    def test_against_numpy(self):
        rng = np.random.default_rng(14)
        for shape in SHAPES:
            for frozen in [False, True]:
                for channels_last in [False, True]:
                    with self.subTest(shape=shape, frozen=frozen, channels_last=channels_last):
                        x, dy = randn(rng, *shape, offset=2.0), randn(rng, *shape)
                        w = randn(rng, 4)
                        _, mean, invstd, _ = ref.train_forward(x)
                        mean32, invstd32 = mean.astype(np.float32), invstd.astype(np.float32)
                        to = ref.to_channels_last if channels_last else (lambda a: a)
                        dx, dw, db = F.batch_norm_backward(to(x), to(dy), mean32, invstd32, w,
                                                           frozen=frozen, channels_last=channels_last)
                        if channels_last:
                            dx = ref.to_channels_first(dx)
                        dx_ref, dw_ref, db_ref = ref.backward(x, dy, mean32, invstd32, w, frozen)
                        self.assertLess(ref.rel_err(dx, dx_ref), TOL)
                        self.assertLess(ref.rel_err(dw, dw_ref), TOL)
                        self.assertLess(ref.rel_err(db, db_ref), TOL)

    def test_output_mask_and_no_weight(self):
        rng = np.random.default_rng(15)
        x, dy = randn(rng, 4, 3, 5), randn(rng, 4, 3, 5)
        _, mean, invstd = F.batch_norm_train(x)
        dx, dw, db = F.batch_norm_backward(x, dy, mean, invstd, output_mask=(True, False, False))
        self.assertIsNone(dw)
        self.assertIsNone(db)
        dx_ref, dw_ref, db_ref = ref.backward(x, dy, mean, invstd)
        self.assertLess(ref.rel_err(dx, dx_ref), TOL)
        dx, dw, db = F.batch_norm_backward(x, dy, mean, invstd, output_mask=[False, True, True])
        self.assertIsNone(dx)
        self.assertLess(ref.rel_err(dw, dw_ref), TOL)
        self.assertLess(ref.rel_err(db, db_ref), TOL)

    def test_errors(self):
        x = np.arange(12, dtype=np.float32).reshape(4, 3)
        mean, invstd = np.zeros(3, np.float32), np.ones(3, np.float32)
        with self.assertRaisesRegex(ValueError, r"\(4, 3\).*\(2, 3\)"):
            F.batch_norm_backward(x, np.ones((2, 3), np.float32), mean, invstd)
        with self.assertRaisesRegex(ValueError, "float64"):
            F.batch_norm_backward(x, np.ones((4, 3)), mean, invstd)
        with self.assertRaisesRegex(ValueError, "more than 1 value"):
            F.batch_norm_backward(x[:1], x[:1], mean, invstd)
        F.batch_norm_backward(x[:1], x[:1], mean, invstd, frozen=True)  # fine when frozen


class TestStores(unittest.TestCase):
    """stores= chooses how the output is stored; the values must not change."""

    def test_every_policy_gives_the_same_bits(self):
        rng = np.random.default_rng(17)
        # 8 channels (channels_last streams only whole vectors of 8), odd spatial extent.
        for shape, channels_last in [((5, 8, 7, 9), False), ((5, 7, 9, 8), True), ((33, 16), False)]:
            with self.subTest(shape=shape, channels_last=channels_last):
                c = shape[-1] if channels_last else shape[1]
                x = randn(rng, *shape, offset=2.0)
                dy = randn(rng, *shape)
                w, b = randn(rng, c), randn(rng, c)
                results = {}
                for stores in ["automatic", "cached", "streaming"]:
                    y, mean, invstd = F.batch_norm_train(x, w, b, channels_last=channels_last, stores=stores)
                    y_infer = F.batch_norm_infer(x, mean, invstd=invstd, weight=w, bias=b,
                                                 channels_last=channels_last, stores=stores)
                    dx, dw, db = F.batch_norm_backward(x, dy, mean, invstd, w,
                                                       channels_last=channels_last, stores=stores)
                    results[stores] = [y, mean, invstd, y_infer, dx, dw, db]
                for stores in ["cached", "streaming"]:
                    for got, want in zip(results[stores], results["automatic"]):
                        self.assertEqual(got.tobytes(), want.tobytes(), stores)

    def test_unknown_policy(self):
        x = np.ones((4, 3), np.float32)
        x[0] = 0
        for call in [lambda: F.batch_norm_train(x, stores="fast"),
                     lambda: F.batch_norm_infer(x, np.zeros(3, np.float32), np.ones(3, np.float32), stores="fast"),
                     lambda: F.batch_norm_backward(x, x, np.zeros(3, np.float32), np.ones(3, np.float32),
                                                   stores="fast")]:
            with self.assertRaisesRegex(ValueError, r"unknown output stores 'fast' \(one of automatic, cached, streaming\)"):
                call()


class TestMoments(unittest.TestCase):
    def test_moments_against_numpy(self):
        rng = np.random.default_rng(16)
        for shape in SHAPES:
            for channels_last in [False, True]:
                with self.subTest(shape=shape, channels_last=channels_last):
                    x = randn(rng, *shape, offset=100.0)
                    arg = ref.to_channels_last(x) if channels_last else x
                    count, mean, m2 = F.moments(arg, channels_last=channels_last)
                    x64 = x.astype(np.float64)
                    axes = ref.reduce_axes(x)
                    self.assertEqual(count, x.size // 4)
                    self.assertEqual((mean.dtype, m2.dtype), (np.float64, np.float64))
                    # offset 100, scale 1: a one-pass float sum of squares would lose every
                    # digit of m2 here; any stable method is within a few float32 ulps.
                    self.assertLess(ref.rel_err(mean, x64.mean(axis=axes)), TOL)
                    m2_ref = ((x64 - ref.per_channel(x64.mean(axis=axes), x64)) ** 2).sum(axis=axes)
                    self.assertLess(ref.rel_err(m2, m2_ref), TOL)

    def test_sync_batch_norm_path(self):
        # Three shards of one batch: merged moments give the whole batch's statistics, and
        # finalize + normalize equal batch_norm_train on the whole batch.
        rng = np.random.default_rng(17)
        shards = [randn(rng, n, 3, 4, 4, offset=5.0) for n in (1, 2, 3)]
        whole = np.concatenate(shards)
        w, b = randn(rng, 3), randn(rng, 3)
        total = F.moments(shards[0])
        for shard in shards[1:]:
            total = F.moments_merge(total, F.moments(shard))
        count, mean, m2 = F.moments(whole)
        self.assertEqual(total[0], count)
        self.assertLess(ref.rel_err(total[1], mean), TOL)
        self.assertLess(ref.rel_err(total[2], m2), TOL)

        rm_a, rv_a = np.zeros(3, np.float32), np.ones(3, np.float32)
        rm_b, rv_b = rm_a.copy(), rv_a.copy()
        save_mean, save_invstd = F.moments_finalize(total, 1e-5, rm_a, rv_a, momentum=0.3)
        y_ref, mean_ref, invstd_ref = F.batch_norm_train(whole, w, b, rm_b, rv_b, momentum=0.3)
        self.assertLess(ref.rel_err(save_mean, mean_ref), TOL)
        self.assertLess(ref.rel_err(save_invstd, invstd_ref), TOL)
        self.assertLess(ref.rel_err(rm_a, rm_b), TOL)
        self.assertLess(ref.rel_err(rv_a, rv_b), TOL)
        y = np.concatenate([F.batch_norm_infer(s, save_mean, weight=w, bias=b, invstd=save_invstd)
                            for s in shards])
        self.assertLess(ref.rel_err(y, y_ref), TOL)

    def test_merge_does_not_modify_inputs(self):
        a = F.moments(np.arange(6, dtype=np.float32).reshape(3, 2))
        b = F.moments(np.arange(4, dtype=np.float32).reshape(2, 2) + 10)
        a_copy = (a[0], a[1].copy(), a[2].copy())
        F.moments_merge(a, b)
        self.assertEqual(a[0], a_copy[0])
        np.testing.assert_array_equal(a[1], a_copy[1])
        np.testing.assert_array_equal(a[2], a_copy[2])

    def test_moment_errors(self):
        a = F.moments(np.ones((2, 3), np.float32))
        with self.assertRaisesRegex(ValueError, r"\(3,\)"):
            F.moments_merge(a, F.moments(np.ones((2, 4), np.float32)))
        with self.assertRaises(TypeError):
            F.moments_merge(a, [1, 2])
        with self.assertRaisesRegex(ValueError, "float64"):
            F.moments_merge(a, (2, np.zeros(3, np.float32), np.zeros(3, np.float32)))
        with self.assertRaisesRegex(ValueError, "more than 1 value"):
            F.moments_finalize(F.moments(np.ones((1, 3), np.float32)))


class TestLayerAgreement(unittest.TestCase):
    def test_functional_equals_layer(self):
        rng = np.random.default_rng(18)
        bn = bnorm.BatchNorm2d(3, momentum=0.2)
        w, b = randn(rng, 3), randn(rng, 3)
        bn.weight, bn.bias = w, b
        rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
        x, dy = randn(rng, 2, 3, 4, 4), randn(rng, 2, 3, 4, 4)
        y, mean, invstd = F.batch_norm_train(x, w, b, rm, rv, momentum=0.2)
        np.testing.assert_array_equal(bn(x), y)
        np.testing.assert_array_equal(bn.running_mean, rm)
        np.testing.assert_array_equal(bn.running_var, rv)
        dx, dw, db = F.batch_norm_backward(x, dy, mean, invstd, w)
        np.testing.assert_array_equal(bn.backward(dy), dx)
        np.testing.assert_array_equal(bn.weight_grad, dw)
        np.testing.assert_array_equal(bn.bias_grad, db)


if __name__ == "__main__":
    unittest.main()
