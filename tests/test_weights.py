"""fastconv.models.load_weights: .npz, .safetensors and .pth round trips, and the errors that list every key
that does not fit (nothing is loaded then). Loading real torchvision exports: tests/test_torchvision.py."""

import numpy as np
import pytest
from helpers import requires_torch, torch

import fastconv.nn as nn
from fastconv import models

try:
    from safetensors.numpy import save_file as save_safetensors
except ImportError:  # optional extra: fastconv[weights]
    save_safetensors = None


def seeded(name, seed, **kw):
    nn.manual_seed(seed)
    return models.get_model(name, **kw)


def same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(np.array_equal(sa[k], sb[k]) for k in sa)


def save(state, path):
    if path.suffix == ".npz":
        np.savez(path, **state)
    elif path.suffix == ".safetensors":
        save_safetensors({k: np.array(v, order="C") for k, v in state.items()}, str(path))
    else:
        torch.save({k: torch.from_numpy(np.array(v)) for k, v in state.items()}, path)


FORMATS = [
    ".npz",
    pytest.param(
        ".safetensors",
        marks=pytest.mark.skipif(save_safetensors is None, reason="safetensors is not installed (optional)"),
    ),
    pytest.param(".pth", marks=[requires_torch, pytest.mark.torch]),
]


@pytest.mark.parametrize("suffix", FORMATS)
def test_round_trip(suffix, tmp_path):
    source, target = seeded("squeezenet1_1", 0, num_classes=5), seeded("squeezenet1_1", 1, num_classes=5)
    source.features[3].squeeze.weight.data[...] = 7.0  # not what any seed draws
    path = tmp_path / f"w{suffix}"
    save(source.state_dict(), path)
    assert not same_state(source, target)
    result = models.load_weights(target, path)
    assert same_state(source, target) and result == ([], [])


@pytest.mark.parametrize("suffix", FORMATS)
def test_float64_and_int_buffers_convert_to_the_model(suffix, tmp_path):
    source = seeded("resnet18", 0, num_classes=3)
    state = {k: (v.astype(np.float64) if v.dtype == np.float32 else v) for k, v in source.state_dict().items()}
    state["bn1.num_batches_tracked"] = np.array(5, np.int64)
    save(state, tmp_path / f"w{suffix}")
    target = seeded("resnet18", 1, num_classes=3)
    models.load_weights(target, tmp_path / f"w{suffix}")
    assert target.conv1.weight.data.dtype == np.float32 and int(target.bn1.num_batches_tracked) == 5
    assert np.array_equal(target.fc.weight.data, source.fc.weight.data)


def test_errors_list_every_missing_unexpected_and_misshaped_key_and_load_nothing(tmp_path):
    state = dict(seeded("resnet18", 0).state_dict())  # 1000 classes
    del state["layer2.0.bn1.running_var"]
    state["layer9.weight"] = np.zeros(3, np.float32)
    np.savez(tmp_path / "w.npz", **state)
    target = seeded("resnet18", 1, num_classes=10)
    before = {k: v.copy() for k, v in target.state_dict().items()}
    with pytest.raises(ValueError) as info:
        models.load_weights(target, tmp_path / "w.npz")
    message = str(info.value)
    assert "'" + str(tmp_path / "w.npz") + "' does not fit ResNet" in message
    assert "1 missing keys (in the model, not in the file):\n      layer2.0.bn1.running_var" in message
    assert "1 unexpected keys (in the file, not in the model):\n      layer9.weight" in message
    assert "2 mis-shaped keys:" in message and "fc.weight: (1000, 512) in the file, (10, 512) in the model" in message
    assert "fc.bias: (1000,) in the file, (10,) in the model" in message
    assert all(np.array_equal(before[k], v) for k, v in target.state_dict().items())
    del state["fc.weight"], state["fc.bias"]
    np.savez(tmp_path / "w.npz", **state)
    result = models.load_weights(target, tmp_path / "w.npz", strict=False)  # skips missing and unexpected
    assert result.unexpected_keys == ["layer9.weight"]
    assert result.missing_keys == ["layer2.0.bn1.running_var", "fc.weight", "fc.bias"]


def test_long_listings_are_cut(tmp_path):
    np.savez(tmp_path / "w.npz", **seeded("lenet5", 0).state_dict())
    with pytest.raises(ValueError, match=r"(?s)122 missing keys.*\.\.\. and 110 more.*10 unexpected keys"):
        models.load_weights(build_resnet18(), tmp_path / "w.npz")


def build_resnet18():
    with nn.no_init():
        return models.resnet18()


def test_bad_files(tmp_path):
    with pytest.raises(ValueError, match=r"cannot tell the format of '.*w.h5'; use one of .npz, .pt, .pth"):
        models.load_weights(build_resnet18(), tmp_path / "w.h5")
    with pytest.raises(FileNotFoundError, match="load_weights: no such file"):
        models.load_weights(build_resnet18(), tmp_path / "none.npz")


@requires_torch
@pytest.mark.torch
def test_pth_without_a_state_dict_is_refused(tmp_path):
    torch.save([torch.zeros(2)], tmp_path / "w.pth")
    with pytest.raises(ValueError, match="does not hold a state_dict"):
        models.load_weights(build_resnet18(), tmp_path / "w.pth")
    torch.save({"state_dict": {"conv1.weight": torch.zeros(64, 3, 7, 7)}}, tmp_path / "w.pth")
    with pytest.raises(ValueError, match="missing keys"):  # the nested form is read, then found incomplete
        models.load_weights(build_resnet18(), tmp_path / "w.pth")
