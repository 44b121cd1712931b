"""API tests of the bnorm layers (BatchNorm1d/2d/3d): construction, attributes, modes,
errors, channels_last, and results against the float64 NumPy oracle (numpy_reference.py).

Run: PYTHONPATH=<build>/python /usr/bin/python3 tests/python/test_api.py -v
(CTest: python.api). unittest-based; pytest collects it too.
"""
import gc
import threading
import unittest

import numpy as np

import bnorm
import numpy_reference as ref

# float32 results against a float64 oracle: the kernels accumulate in double (or in a
# fixed-order float scheme), so the norm-wise error is a few float32 ulps (~1e-7); 1e-5
# leaves room for any correct implementation and still catches every real mistake.
TOL = 1e-5


def randn(rng, *shape, offset=0.0, scale=1.0):
    return (offset + scale * rng.standard_normal(shape)).astype(np.float32)


class TestModule(unittest.TestCase):
    def test_version(self):
        self.assertRegex(bnorm.__version__, r"^\d+\.\d+\.\d+")

    def test_implementations(self):
        impls = bnorm.implementations()
        names = [name for name, _ in impls]
        self.assertEqual(names[-1], "reference")
        self.assertTrue(all(reason is None for _, reason in impls))
        for shape, channels_last in [((2, 3, 4, 4), False), ((2, 4, 4, 3), True), ((5, 7), False)]:
            with self.subTest(shape=shape):
                impls = dict(bnorm.implementations(shape, channels_last=channels_last))
                self.assertIsNone(impls["reference"])  # the reference never declines
                for reason in impls.values():
                    self.assertTrue(reason is None or (isinstance(reason, str) and reason))
                selected = bnorm.selected_implementation(shape, channels_last=channels_last)
                self.assertIn(selected, impls)

    def test_implementations_bad_shape(self):
        with self.assertRaises(ValueError):
            bnorm.implementations((3,))

    def test_functional_submodule(self):
        import bnorm.functional as F
        self.assertIs(F, bnorm.functional)
        for name in ["batch_norm_train", "batch_norm_infer", "batch_norm_backward",
                     "moments", "moments_merge", "moments_finalize"]:
            self.assertTrue(callable(getattr(F, name)), name)
            self.assertTrue(getattr(F, name).__doc__)


class TestConstruction(unittest.TestCase):
    def test_defaults(self):
        for cls in [bnorm.BatchNorm1d, bnorm.BatchNorm2d, bnorm.BatchNorm3d]:
            with self.subTest(cls=cls.__name__):
                bn = cls(4)
                self.assertIsInstance(bn, bnorm._BatchNorm)
                self.assertEqual(bn.num_features, 4)
                self.assertEqual(bn.eps, 1e-5)
                self.assertEqual(bn.momentum, 0.1)
                self.assertTrue(bn.affine and bn.track_running_stats and bn.training)
                self.assertFalse(bn.channels_last)
                for name, value in [("weight", 1), ("bias", 0), ("running_mean", 0),
                                    ("running_var", 1), ("weight_grad", 0), ("bias_grad", 0)]:
                    a = getattr(bn, name)
                    self.assertIsInstance(a, np.ndarray, name)
                    self.assertEqual(a.dtype, np.float32, name)
                    self.assertEqual(a.shape, (4,), name)
                    np.testing.assert_array_equal(a, np.full(4, value, np.float32), name)
                self.assertEqual(bn.num_batches_tracked, 0)
                self.assertIsInstance(bn.num_batches_tracked, int)
                self.assertEqual(
                    repr(bn),
                    f"{cls.__name__}(4, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)")

    def test_keywords(self):
        bn = bnorm.BatchNorm2d(num_features=3, eps=1e-3, momentum=None, affine=False,
                               track_running_stats=False, channels_last=True)
        self.assertEqual((bn.eps, bn.momentum, bn.affine, bn.track_running_stats, bn.channels_last),
                         (1e-3, None, False, False, True))
        self.assertIn("momentum=None", repr(bn))
        self.assertIn("channels_last=True", repr(bn))

    def test_missing_attributes_are_none(self):
        bn = bnorm.BatchNorm2d(3, affine=False, track_running_stats=False)
        for name in ["weight", "bias", "weight_grad", "bias_grad", "running_mean",
                     "running_var", "num_batches_tracked"]:
            self.assertIsNone(getattr(bn, name), name)
        with self.assertRaises(AttributeError):
            bn.weight = np.ones(3, np.float32)
        with self.assertRaises(AttributeError):
            bn.running_mean = np.ones(3, np.float32)
        with self.assertRaises(AttributeError):
            bn.num_batches_tracked = 3

    def test_bad_options(self):
        with self.assertRaisesRegex(ValueError, "num_features"):
            bnorm.BatchNorm2d(0)
        with self.assertRaisesRegex(ValueError, "momentum"):
            bnorm.BatchNorm2d(3, momentum=1.5)
        with self.assertRaisesRegex(ValueError, "eps"):
            bnorm.BatchNorm2d(3, eps=-1.0)


class TestAttributes(unittest.TestCase):
    def test_read_write_are_copies(self):
        bn = bnorm.BatchNorm1d(3)
        for name in ["weight", "bias", "running_mean", "running_var"]:
            with self.subTest(name=name):
                source = np.array([0.5, -1.0, 2.0], np.float32)
                setattr(bn, name, source)
                np.testing.assert_array_equal(getattr(bn, name), source)
                source[0] = 99.0  # the layer holds its own copy
                self.assertEqual(getattr(bn, name)[0], 0.5)
                got = getattr(bn, name)
                got[1] = 42.0  # so does the caller
                self.assertEqual(getattr(bn, name)[1], -1.0)

    def test_setter_accepts_strided_view(self):
        bn = bnorm.BatchNorm1d(3)
        bn.weight = np.arange(6, dtype=np.float32)[::2]
        np.testing.assert_array_equal(bn.weight, [0, 2, 4])

    def test_setter_validation(self):
        bn = bnorm.BatchNorm2d(3)
        with self.assertRaises(ValueError) as cm:
            bn.weight = np.ones(4, np.float32)
        self.assertIn("(3,)", str(cm.exception))
        self.assertIn("(4,)", str(cm.exception))
        with self.assertRaisesRegex(ValueError, "float64"):
            bn.running_var = np.ones(3)
        with self.assertRaises(ValueError):
            bn.bias = np.ones((1, 3), np.float32)
        with self.assertRaises(TypeError):
            bn.bias = [0.0, 0.0, 0.0]

    def test_grads_are_read_only(self):
        bn = bnorm.BatchNorm2d(3)
        with self.assertRaises(AttributeError):
            bn.weight_grad = np.zeros(3, np.float32)
        with self.assertRaises(AttributeError):
            bn.bias_grad = np.zeros(3, np.float32)

    def test_num_batches_tracked(self):
        bn = bnorm.BatchNorm2d(3)
        bn.num_batches_tracked = 7
        self.assertEqual(bn.num_batches_tracked, 7)
        with self.assertRaises(ValueError):
            bn.num_batches_tracked = -1
        with self.assertRaises(TypeError):
            bn.num_batches_tracked = 1.5

    def test_reset_running_stats(self):
        rng = np.random.default_rng(0)
        bn = bnorm.BatchNorm2d(3)
        bn(randn(rng, 4, 3, 2, 2, offset=3.0))
        self.assertEqual(bn.num_batches_tracked, 1)
        bn.reset_running_stats()
        np.testing.assert_array_equal(bn.running_mean, np.zeros(3, np.float32))
        np.testing.assert_array_equal(bn.running_var, np.ones(3, np.float32))
        self.assertEqual(bn.num_batches_tracked, 0)


class TestTrainEval(unittest.TestCase):
    def test_mode_switches(self):
        bn = bnorm.BatchNorm2d(3)
        self.assertIs(bn.eval(), bn)
        self.assertFalse(bn.training)
        self.assertIs(bn.train(), bn)
        self.assertTrue(bn.training)
        bn.train(False)
        self.assertFalse(bn.training)
        bn.training = True
        self.assertTrue(bn.training)

    def test_train_step_against_numpy(self):
        rng = np.random.default_rng(1)
        for cls, shape in [(bnorm.BatchNorm1d, (6, 4)), (bnorm.BatchNorm1d, (3, 4, 5)),
                           (bnorm.BatchNorm2d, (2, 4, 3, 5)), (bnorm.BatchNorm3d, (2, 4, 2, 3, 2))]:
            for momentum in [0.1, 0.3, None]:
                with self.subTest(cls=cls.__name__, shape=shape, momentum=momentum):
                    bn = cls(4, momentum=momentum)
                    w, b = randn(rng, 4), randn(rng, 4)
                    bn.weight, bn.bias = w, b
                    rm, rv = np.zeros(4), np.ones(4)
                    dw, db = np.zeros(4), np.zeros(4)
                    for step in range(1, 4):
                        x = randn(rng, *shape, offset=2.0, scale=3.0)
                        dy = randn(rng, *shape)
                        y = bn(x)
                        y_ref, mean, invstd, var_unbiased = ref.train_forward(x, w, b)
                        self.assertLess(ref.rel_err(y, y_ref), TOL)
                        f = momentum if momentum is not None else 1.0 / step
                        rm = (1 - f) * rm + f * mean
                        rv = (1 - f) * rv + f * var_unbiased
                        self.assertLess(ref.rel_err(bn.running_mean, rm), TOL)
                        self.assertLess(ref.rel_err(bn.running_var, rv), TOL)
                        self.assertEqual(bn.num_batches_tracked, step)
                        dx = bn.backward(dy)
                        dx_ref, dw_step, db_step = ref.backward(x, dy, mean, invstd, w)
                        dw, db = dw + dw_step, db + db_step  # parameter gradients accumulate
                        self.assertEqual((dx.shape, dx.dtype), (x.shape, np.float32))
                        self.assertLess(ref.rel_err(dx, dx_ref), TOL)
                        self.assertLess(ref.rel_err(bn.weight_grad, dw), TOL)
                        self.assertLess(ref.rel_err(bn.bias_grad, db), TOL)
                    bn.zero_grad()
                    np.testing.assert_array_equal(bn.weight_grad, np.zeros(4, np.float32))
                    np.testing.assert_array_equal(bn.bias_grad, np.zeros(4, np.float32))

    def test_eval_uses_running_stats_and_frozen_backward(self):
        rng = np.random.default_rng(2)
        bn = bnorm.BatchNorm2d(3).eval()
        w, b = randn(rng, 3), randn(rng, 3)
        rm, rv = randn(rng, 3), (0.5 + rng.random(3)).astype(np.float32)
        bn.weight, bn.bias, bn.running_mean, bn.running_var = w, b, rm, rv
        x, dy = randn(rng, 2, 3, 4, 4), randn(rng, 2, 3, 4, 4)
        y = bn(x)
        self.assertLess(ref.rel_err(y, ref.infer_forward(x, rm, rv, w, b)), TOL)
        self.assertEqual(bn.num_batches_tracked, 0)  # eval does not count batches
        np.testing.assert_array_equal(bn.running_mean, rm)
        dx = bn.backward(dy)
        invstd = 1 / np.sqrt(rv.astype(np.float64) + 1e-5)
        dx_ref, dw_ref, db_ref = ref.backward(x, dy, rm, invstd, w, frozen=True)
        self.assertLess(ref.rel_err(dx, dx_ref), TOL)
        self.assertLess(ref.rel_err(bn.weight_grad, dw_ref), TOL)
        self.assertLess(ref.rel_err(bn.bias_grad, db_ref), TOL)

    def test_eval_batch_of_one_is_fine(self):
        bn = bnorm.BatchNorm1d(3).eval()
        y = bn(np.ones((1, 3), np.float32))
        np.testing.assert_allclose(y, np.full((1, 3), 1 / np.sqrt(1 + 1e-5)), rtol=1e-6)

    def test_no_running_stats_uses_batch_stats_in_eval(self):
        rng = np.random.default_rng(3)
        bn = bnorm.BatchNorm2d(3, track_running_stats=False).eval()
        x = randn(rng, 2, 3, 4, 4, offset=5.0)
        y_ref, mean, invstd, _ = ref.train_forward(x)
        self.assertLess(ref.rel_err(bn(x), y_ref), TOL)
        dy = randn(rng, *x.shape)
        dx_ref, _, _ = ref.backward(x, dy, mean, invstd)  # full backward: batch statistics
        self.assertLess(ref.rel_err(bn.backward(dy), dx_ref), TOL)


class TestInputErrors(unittest.TestCase):
    def test_float64_is_not_cast(self):
        bn = bnorm.BatchNorm2d(3)
        with self.assertRaises(ValueError) as cm:
            bn(np.zeros((2, 3, 4, 4)))
        message = str(cm.exception)
        self.assertIn("float64", message)
        self.assertIn("(2, 3, 4, 4)", message)
        self.assertIn("float32", message)

    def test_other_dtypes(self):
        bn = bnorm.BatchNorm1d(3)
        for dtype in [np.float16, np.int32, np.dtype(">f4")]:
            with self.subTest(dtype=dtype):
                with self.assertRaises(ValueError):
                    bn(np.zeros((2, 3), dtype))

    def test_wrong_channel_count_names_shapes(self):
        for bn, x, expected in [
            (bnorm.BatchNorm2d(3), np.zeros((2, 4, 5, 5), np.float32), "(N, 3, H, W)"),
            (bnorm.BatchNorm2d(3, channels_last=True), np.zeros((2, 5, 5, 4), np.float32),
             "(N, H, W, 3)"),
            (bnorm.BatchNorm1d(3), np.zeros((2, 4), np.float32), "(N, 3) or (N, 3, L)"),
            (bnorm.BatchNorm3d(3), np.zeros((2, 4, 1, 2, 2), np.float32), "(N, 3, D, H, W)"),
        ]:
            with self.subTest(expected=expected):
                with self.assertRaises(ValueError) as cm:
                    bn(x)
                message = str(cm.exception)
                self.assertIn(expected, message)
                self.assertIn(str(x.shape), message)

    def test_wrong_rank(self):
        cases = [(bnorm.BatchNorm1d(3), [(3,), (2, 3, 4, 4)]),
                 (bnorm.BatchNorm2d(3), [(2, 3), (2, 3, 4), (2, 3, 4, 4, 4)]),
                 (bnorm.BatchNorm3d(3), [(2, 3, 4, 4), (2, 3, 1, 1, 1, 1)])]
        for bn, shapes in cases:
            for shape in shapes:
                with self.subTest(layer=repr(bn), shape=shape):
                    with self.assertRaises(ValueError) as cm:
                        bn(np.zeros(shape, np.float32))
                    self.assertIn(str(shape), str(cm.exception))

    def test_empty_input(self):
        for mode in [True, False]:
            with self.subTest(training=mode):
                with self.assertRaisesRegex(ValueError, "N=0"):
                    bnorm.BatchNorm1d(3).train(mode)(np.zeros((0, 3), np.float32))

    def test_not_an_array(self):
        with self.assertRaises(TypeError):
            bnorm.BatchNorm1d(2)([[1.0, 2.0], [3.0, 4.0]])

    def test_one_value_per_channel_in_training(self):
        for bn, x in [(bnorm.BatchNorm1d(3), np.zeros((1, 3), np.float32)),
                      (bnorm.BatchNorm2d(3), np.zeros((1, 3, 1, 1), np.float32))]:
            with self.subTest(layer=repr(bn)):
                with self.assertRaisesRegex(ValueError, "more than 1 value per channel"):
                    bn(x)
                self.assertEqual(bn.num_batches_tracked, 0)

    def test_backward_errors(self):
        bn = bnorm.BatchNorm2d(3)
        x = np.ones((2, 3, 2, 2), np.float32)
        with self.assertRaisesRegex(RuntimeError, "before forward"):
            bn.backward(x)
        x[0] = 2
        bn(x)
        with self.assertRaises(ValueError) as cm:
            bn.backward(np.ones((2, 3, 2, 3), np.float32))
        self.assertIn("(2, 3, 2, 2)", str(cm.exception))
        self.assertIn("(2, 3, 2, 3)", str(cm.exception))
        with self.assertRaisesRegex(ValueError, "float64"):
            bn.backward(np.ones((2, 3, 2, 2)))
        bn.backward(np.ones((2, 3, 2, 2), np.float32))  # still valid after the failures


class TestInputHandling(unittest.TestCase):
    def test_input_kept_alive_for_backward(self):
        rng = np.random.default_rng(4)
        x, dy = randn(rng, 4, 3, 5), randn(rng, 4, 3, 5)
        expected = ref.backward(x, dy, *ref.train_forward(x)[1:3])[0]
        bn = bnorm.BatchNorm1d(3, affine=False)
        bn(x.copy())  # the only reference to this array is the layer's
        gc.collect()
        self.assertLess(ref.rel_err(bn.backward(dy), expected), TOL)

    def test_non_contiguous_and_read_only_inputs(self):
        rng = np.random.default_rng(5)
        x = randn(rng, 4, 2, 5, 3).transpose(0, 3, 2, 1)  # (N, C, H, W) = (4, 3, 5, 2), strided
        self.assertFalse(x.flags.c_contiguous)
        read_only = np.ascontiguousarray(x)
        read_only.setflags(write=False)
        bn_a, bn_b = bnorm.BatchNorm2d(3), bnorm.BatchNorm2d(3)
        np.testing.assert_array_equal(bn_a(x), bn_b(read_only))
        dy = randn(rng, 4, 3, 5, 4)[..., ::2]  # strided
        self.assertFalse(dy.flags.c_contiguous)
        np.testing.assert_array_equal(bn_a.backward(dy), bn_b.backward(np.ascontiguousarray(dy)))
        np.testing.assert_array_equal(bn_a.weight_grad, bn_b.weight_grad)

    def test_outputs_are_fresh_arrays(self):
        bn = bnorm.BatchNorm1d(2)
        x = np.array([[1, 2], [3, 5]], np.float32)
        y = bn(x)
        self.assertTrue(y.flags.c_contiguous and y.flags.writeable)
        self.assertFalse(np.shares_memory(x, y))
        y[:] = 0  # writing the output does not touch the layer or x
        np.testing.assert_array_equal(x, [[1, 2], [3, 5]])
        self.assertFalse(np.shares_memory(y, bn.backward(np.ones_like(x))))


class TestChannelsLast(unittest.TestCase):
    """channels_last=True on (N, ..., C) data equals channels_first on the same values."""

    def run_pair(self, cls, shape, rng, **options):
        first = cls(shape[1], **options)
        last = cls(shape[1], channels_last=True, **options)
        w, b = randn(rng, shape[1]), randn(rng, shape[1])
        if options.get("affine", True):
            first.weight = last.weight = w
            first.bias = last.bias = b
        for step in range(3):
            if step == 2:
                first.eval(), last.eval()
            x, dy = randn(rng, *shape, offset=1.0), randn(rng, *shape)
            y_first = first(x)
            y_last = last(ref.to_channels_last(x))
            self.assertEqual(y_last.shape, ref.to_channels_last(x).shape)
            self.assertLess(ref.rel_err(ref.to_channels_first(y_last), y_first), TOL)
            dx_first = first.backward(dy)
            dx_last = last.backward(ref.to_channels_last(dy))
            self.assertLess(ref.rel_err(ref.to_channels_first(dx_last), dx_first), TOL)
            for name in ["weight_grad", "bias_grad", "running_mean", "running_var"]:
                a, b = getattr(last, name), getattr(first, name)
                if b is None:
                    self.assertIsNone(a)
                else:
                    self.assertLess(ref.rel_err(a, b), TOL, name)
            self.assertEqual(last.num_batches_tracked, first.num_batches_tracked)

    def test_round_trip(self):
        rng = np.random.default_rng(6)
        for cls, shape in [(bnorm.BatchNorm1d, (4, 3)), (bnorm.BatchNorm1d, (2, 3, 7)),
                           (bnorm.BatchNorm2d, (2, 5, 3, 4)), (bnorm.BatchNorm3d, (2, 4, 3, 2, 3))]:
            for affine in [True, False]:
                with self.subTest(cls=cls.__name__, shape=shape, affine=affine):
                    self.run_pair(cls, shape, rng, affine=affine)

    def test_channels_last_accepts_transposed_view(self):
        # A channels-first array seen as (N, H, W, C) through a transpose is not contiguous:
        # it is copied once at the boundary and gives the same result.
        rng = np.random.default_rng(7)
        x = randn(rng, 2, 3, 4, 5)
        view = x.transpose(0, 2, 3, 1)
        bn = bnorm.BatchNorm2d(3, channels_last=True)
        y = bn(view)
        y_ref = ref.train_forward(x)[0]
        self.assertLess(ref.rel_err(ref.to_channels_first(y), y_ref), TOL)


class TestThreads(unittest.TestCase):
    def test_layers_in_parallel_threads(self):
        # The GIL is released in the kernels; separate layers in separate threads must give
        # the same results as in one thread, and one shared layer must not crash.
        rng = np.random.default_rng(8)
        xs = [randn(rng, 8, 6, 16, 16) for _ in range(4)]
        serial = [bnorm.BatchNorm2d(6)(x) for x in xs]
        results = [None] * len(xs)

        def work(i):
            results[i] = bnorm.BatchNorm2d(6)(xs[i])

        threads = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for a, b in zip(results, serial):
            np.testing.assert_array_equal(a, b)

        shared = bnorm.BatchNorm2d(6)
        errors = []

        def hammer():
            try:
                for x in xs:
                    shared(x)
                    shared.backward(x)
            except Exception as e:  # pragma: no cover - reported below
                errors.append(e)

        threads = [threading.Thread(target=hammer) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(shared.num_batches_tracked, 3 * len(xs))


if __name__ == "__main__":
    unittest.main()
