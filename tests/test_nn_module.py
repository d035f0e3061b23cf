"""The Module API: naming (torchvision's state_dict keys), state_dict round trip, strict loading errors,
train/eval (eval keeps no backward state), what the tape keeps, its errors, to(backend) and to(dtype)."""

import io

import numpy as np
import pytest
from helpers import requires_torch, torch
from nn_blocks import blocks, projection

import fastconv as fc
import fastconv.nn as nn
from fastconv import dispatch

FC = blocks(nn, nn.add, nn.cat)


def tiny_resnet(nn, b):
    """A stem, a stage of two basic blocks (the first with a projection shortcut), a head: the key patterns of
    torchvision's ResNet (conv1, bn1, layer1.0.downsample.0, fc)."""

    class TinyResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 4, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(4)
            self.relu = nn.ReLU(inplace=True)
            self.layer1 = nn.Sequential(b.BasicBlock(4, 6, 2, projection(nn, 4, 6, 2)), b.BasicBlock(6, 6))
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(6, 5)

        def forward(self, x):
            x = self.layer1(self.relu(self.bn1(self.conv1(x))))
            return self.fc(nn.Flatten()(self.avgpool(x)))

    return TinyResNet()


def _model(seed=0):
    nn.manual_seed(seed)
    return tiny_resnet(nn, FC)


def test_state_dict_keys_are_torchvisions():
    keys = list(_model().state_dict())
    assert keys[:7] == [
        "conv1.weight",
        "bn1.weight",
        "bn1.bias",
        "bn1.running_mean",
        "bn1.running_var",
        "bn1.num_batches_tracked",
        "layer1.0.conv1.weight",
    ]
    assert "layer1.0.downsample.0.weight" in keys and "layer1.0.downsample.1.running_var" in keys
    assert "layer1.1.downsample.0.weight" not in keys and keys[-2:] == ["fc.weight", "fc.bias"]
    names = [n for n, _ in _model().named_parameters()]
    assert names == [k for k in keys if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]


@requires_torch
@pytest.mark.torch
def test_state_dict_keys_equal_torch_for_the_same_code():
    t_model = tiny_resnet(torch.nn, blocks(torch.nn, torch.add, torch.cat))
    ours = _model().state_dict()
    assert list(ours) == list(t_model.state_dict())
    assert all(tuple(v.shape) == tuple(t_model.state_dict()[k].shape) for k, v in ours.items())


def test_sequential_naming_dict_and_add_module():
    seq = nn.Sequential({"conv0": nn.Conv2d(1, 2, 3), "norm0": nn.BatchNorm2d(2)})
    seq.add_module("relu0", nn.ReLU())
    seq.add_module("pool0", nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(2, 2, 1, bias=False)))
    assert list(seq.state_dict())[:2] == ["conv0.weight", "conv0.bias"]
    assert "pool0.1.weight" in seq.state_dict() and "pool0.1.bias" not in seq.state_dict()
    assert len(seq) == 4 and isinstance(seq[2], nn.ReLU) and [type(m).__name__ for m in seq][-1] == "Sequential"
    assert "(conv0): Conv2d(1, 2, kernel_size=(3, 3), stride=(1, 1))" in repr(seq)


def test_state_dict_round_trip_through_npz(rng):
    model = _model(0)
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    model(x)  # moves the running statistics off their initial values
    buf = io.BytesIO()
    np.savez(buf, **model.state_dict())
    buf.seek(0)
    other = _model(1)
    with np.load(buf) as saved:
        other.load_state_dict(dict(saved))
    for (k, a), (k2, b) in zip(model.state_dict().items(), other.state_dict().items()):
        assert k == k2 and a.dtype == b.dtype and np.array_equal(a, b), k
    assert int(other.bn1.num_batches_tracked) == 1
    model.eval(), other.eval()
    assert np.array_equal(model(x), other(x))


def test_load_state_dict_strict_lists_missing_unexpected_and_mismatched():
    model = _model()
    state = dict(model.state_dict())
    del state["layer1.0.bn2.running_var"], state["fc.bias"]
    state["fc.extra"] = np.zeros(3)
    state["conv1.weight"] = np.zeros((4, 3, 5, 5))
    with pytest.raises(ValueError) as err:
        model.load_state_dict(state)
    msg = str(err.value)
    for part in (
        "missing key: layer1.0.bn2.running_var",
        "missing key: fc.bias",
        "unexpected key: fc.extra",
        "size mismatch for conv1.weight: shape (4, 3, 5, 5) in the state dict, (4, 3, 3, 3) in the model",
    ):
        assert part in msg, msg
    with pytest.raises(ValueError, match="size mismatch for conv1.weight"):
        model.load_state_dict(state, strict=False)
    state["conv1.weight"] = np.ones((4, 3, 3, 3))  # float64 into a float32 model: cast
    result = model.load_state_dict(state, strict=False)
    assert result.missing_keys == ["layer1.0.bn2.running_var", "fc.bias"] and result.unexpected_keys == ["fc.extra"]
    assert model.conv1.weight.data.dtype == np.float32 and model.conv1.weight.data.sum() == 108


def _saved_arrays(tape):
    """Distinct memory blocks the tape's nodes hold for backward (views count as their base)."""
    held = {}
    for node in tape.nodes:
        for a in node.saved if isinstance(node.saved, tuple) else (node.saved,):
            if isinstance(a, np.ndarray) and a.strides and any(a.strides):
                base = a if a.base is None else a.base
                held[id(base)] = base.shape
    return held


def test_backward_keeps_only_what_it_needs_and_eval_keeps_nothing(rng):
    model = nn.Sequential(
        nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Dropout(0.5)
    )
    x = rng.standard_normal((2, 2, 6, 6)).astype(np.float32)
    model(x)
    tape = model._tape
    assert tape._alive == [] and tape._slots == {}, "the id map is dropped when the forward ends"
    # conv keeps x, batch norm its input (the conv output), ReLU its output, dropout a bool mask; nothing keeps
    # the batch-norm output or the pooled/flattened arrays.
    assert sorted(_saved_arrays(tape).values()) == [(2, 2, 6, 6), (2, 3, 4, 4), (2, 3, 4, 4), (2, 12)]
    model.backward(np.ones((2, 12), np.float32))
    assert model._tape is None and tape.nodes == []
    with pytest.raises(RuntimeError, match="one backward"):
        model.backward(np.ones((2, 12), np.float32))
    model.eval()
    model(x)
    assert all(m._tape is None for m in model.modules())
    with pytest.raises(RuntimeError, match="nothing to differentiate"):
        model.backward(np.ones((2, 12), np.float32))


def test_eval_uses_running_statistics_and_train_updates_them(rng):
    bn = nn.BatchNorm2d(3)
    x = rng.standard_normal((4, 3, 5, 5)).astype(np.float32) * 2 + 1
    bn(x)
    np.testing.assert_allclose(bn.running_mean, 0.1 * x.mean(axis=(0, 2, 3)), rtol=1e-5)
    bn.eval()
    expected = fc.batch_norm(x, bn.running_mean, bn.running_var, bn.weight.data, bn.bias.data, backend="numpy")
    np.testing.assert_allclose(bn(x), expected, rtol=1e-6)
    assert int(bn.num_batches_tracked) == 1


class _Reshapes(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        return self.fc(x.reshape(len(x), -1))  # plain NumPy inside a recorded forward


class _TwoInTwoOut(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, a, b):
        shared = self.fc(a)  # one Linear used twice: gradients accumulate
        return nn.add(shared, b), self.fc(shared)


def test_tape_errors_and_multi_input_multi_output(rng):
    with pytest.raises(ValueError, match="no recorded op produced"):
        _Reshapes()(np.ones((2, 2, 4), np.float32))
    _Reshapes().eval()(np.ones((2, 2, 4), np.float32))  # not recording: plain NumPy is fine
    m = _TwoInTwoOut().to(np.float64)
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    y1, y2 = m(a, b)
    g1 = rng.standard_normal(y1.shape)
    with pytest.raises(ValueError, match="tuple of 2 arrays"):
        m.backward(g1)
    ga, gb = m.backward((g1, None))
    W = m.fc.weight.data
    np.testing.assert_allclose(ga, g1 @ W)
    np.testing.assert_allclose(gb, g1)
    y1, y2 = m(a, b)
    with pytest.raises(ValueError, match=r"shape \(4, 3\)"):
        m.backward((g1[:2], None))
    m.zero_grad()
    m(a, b)
    g2 = rng.standard_normal((4, 3))
    m.backward((None, g2))
    h = a @ W.T + m.fc.bias.data
    np.testing.assert_allclose(m.fc.weight.grad, g2.T @ h + (g2 @ W).T @ a)  # both uses of the Linear


def _spy_backend(calls):
    def wrap(op):
        def run(p, *args):
            calls.append(op)
            return dispatch.select(op, p, "numpy", "numpy").fn(p, *args)

        return run

    return {op: wrap(op) for op in dispatch.OPS}


def test_to_backend_runs_every_layer_there_and_to_dtype_casts(rng):
    calls = []
    fc.register_backend("nn-spy", _spy_backend(calls))
    try:
        model = _model().to("numpy")
        x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
        expected = model(x)
        gx = model.backward(np.ones_like(expected))
        assert model.to("nn-spy") is model and model.layer1[0].conv1.backend == "nn-spy"
        with fc.use_backend("numpy"):  # the module's backend beats the context
            y = model(x)
            gx_spy = model.backward(np.ones_like(y))
        assert set(calls) >= {
            "conv2d",
            "conv2d_bwd_data",
            "conv2d_bwd_weight",
            "batch_norm",
            "batch_norm_bwd",
            "relu",
            "relu_bwd",
            "adaptive_avg_pool2d",
            "adaptive_avg_pool2d_bwd",
            "linear",
            "linear_bwd_data",
            "linear_bwd_weight",
            "linear_bwd_bias",
        }
        assert np.array_equal(y, expected) and np.array_equal(gx_spy, gx), "the spy runs the numpy backend's ops"
    finally:
        dispatch._BACKENDS.pop("nn-spy")
        for op in dispatch.OPS:
            dispatch._IMPLS.pop((op, "nn-spy"), None)
    model.to(np.float64)
    assert model.fc.weight.data.dtype == np.float64 and model.bn1.running_var.dtype == np.float64
    assert model.bn1.num_batches_tracked.dtype == np.int64 and model.fc.weight.grad.dtype == np.float64
    with pytest.raises(ValueError, match="unknown backend 'nope'"):
        model.to("nope")
    fc.register_backend("nn-gone", {"relu": None, "conv2d": print})
    dispatch.set_unavailable_probe("nn-gone", lambda: "its library is not installed")
    try:
        with pytest.raises(RuntimeError, match="'nn-gone' is not available here: its library is not installed"):
            model.to("nn-gone")
    finally:
        dispatch._BACKENDS.pop("nn-gone")
        dispatch._IMPLS.pop(("conv2d", "nn-gone"))
    with pytest.raises(TypeError, match="float32 or float64"):
        model.to(np.int32)


def test_parameters_are_listed_once_and_registration_rules():
    shared = nn.Linear(2, 2)
    seq = nn.Sequential(shared, nn.ReLU(), shared)
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias"]
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    with pytest.raises(TypeError, match="is a parameter"):
        shared.weight = np.zeros((2, 2))
    shared.bias = None
    assert list(shared.state_dict()) == ["weight"]
    with pytest.raises(AttributeError, match="Module.__init__"):

        class Broken(nn.Module):
            def __init__(self):
                self.fc = nn.Linear(1, 1)

        Broken()


def _cuda_unavailable():
    status = fc.backends().get("cuda")
    return "the 'cuda' backend is not registered" if status is None else status.reason


@pytest.mark.gpu
@pytest.mark.skipif(bool(_cuda_unavailable()), reason=f"cuda: {_cuda_unavailable()}")
def test_to_cuda_moves_parameters_and_buffers_and_matches_numpy(rng):
    import cupy

    model = _model()
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    expected = model(x)
    gx = model.backward(np.ones_like(expected))
    grads = {n: p.grad for n, p in model.named_parameters()}
    model.to("cuda").zero_grad()
    assert all(isinstance(v, cupy.ndarray) for v in model.state_dict().values())
    y = model(cupy.asarray(x))
    assert isinstance(y, cupy.ndarray)
    np.testing.assert_allclose(y.get(), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.backward(cupy.ones_like(y)).get(), gx, rtol=1e-4, atol=1e-5)
    for n, p in model.named_parameters():
        np.testing.assert_allclose(p.grad.get(), grads[n], rtol=1e-3, atol=1e-5, err_msg=n)
    model.to("numpy")
    assert all(isinstance(v, np.ndarray) for v in model.state_dict().values())


class _Glue(nn.Module):
    def forward(self, x):
        a, b = x[:, :2], x[:, 2:]  # slices of the root input itself are not recorded: refused below
        return nn.add(a, b)


def test_glue_ops_gradients_and_errors(rng):
    x = rng.standard_normal((2, 3, 4))

    class ThreeWay(nn.Module):
        def forward(self, x):
            y = nn.flatten(x, 1)  # (2, 12)
            return nn.cat([nn.add(y, y, y), y], dim=-1)  # (2, 24): d/dy = 3 + 1

    m = ThreeWay()
    out = m(x)
    assert out.shape == (2, 24)
    np.testing.assert_allclose(m.backward(np.ones_like(out)), np.full(x.shape, 4.0))
    with pytest.raises(ValueError, match="no recorded op produced"):
        _Glue()(rng.standard_normal((2, 4)))
    for call, match in (
        (lambda: nn.add(x, x[:1]), "one shape"),
        (lambda: nn.cat([x, x[:, :, :2]], 1), "every dim"),
        (lambda: nn.cat([x, x], 3), "out of range"),
        (lambda: nn.flatten(x, 2, 1), "do not fit"),
        (lambda: nn.add(x, x.astype(np.float32)), "dtype"),
        (lambda: nn.cat([]), "at least one"),
    ):
        with pytest.raises((ValueError, TypeError), match=match):
            call()


def test_a_module_that_has_run_pickles_and_deep_copies_without_its_per_call_state(rng):
    """After forwards (each layer keeps its last call's plan, a training forward its tape), pickle and deepcopy
    keep the parameters and drop the per-call state; the copies compute the same outputs."""
    import copy
    import pickle

    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 1))
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    model(x)  # training mode: a tape is pending
    want = model.eval()(x)
    assert any("_plan_memo" in m.__dict__ for m in model.modules())
    for twin in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model)):
        assert not any("_plan_memo" in m.__dict__ for m in twin.modules()) and twin._tape is None
        assert np.array_equal(twin(x), want)
