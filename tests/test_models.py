"""fastconv.models: every architecture's parameter count and state_dict (keys, order, shapes) against
torchvision's (tests/data/torchvision_models.json.gz, exported from torchvision 0.29.1 by
scripts/export_torchvision_reference.py), the published counts of the others, initialisation statistics,
and forward/backward smoke tests on small models."""

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import directional_grad_check

import fastconv.nn as nn
from fastconv import models

REFERENCE = json.loads(gzip.open(Path(__file__).parent / "data" / "torchvision_models.json.gz", "rt").read())
TV = REFERENCE["models"]

# Models torchvision does not have: parameter counts worked out by hand from their layer lists.
OTHERS = {
    "lenet5": 61_706,  # 156 + 2,416 + 48,120 + 10,164 + 850
    "simple_cnn": 1_413_834,  # 3,200 + 73,856 + 147,584 + 295,168 + 590,080 + 295,040 + 8,256 + 650
    "alexnet_paper": 60_965_224,  # the figure for the 2012 two-GPU network
    "zfnet": 62_357_608,  # 14,208 + 614,656 + 885,120 + 1,327,488 + 884,992 + AlexNet's 58,631,144 FC
    "nin": 7_595_176,  # (34,944 + 2*9,312) + (614,656 + 2*65,792) + (885,120 + 2*147,840)
    # + (3,539,968 + 1,049,600 + 1,025,000)
}


def build(name, **kw):
    with nn.no_init():
        return models.get_model(name, **kw)


def count(model):
    return sum(p.data.size for p in model.parameters())


def test_every_model_is_listed_once():
    assert set(models.list_models()) == set(TV) | set(OTHERS)
    assert set(models.INPUT_SHAPES) == set(models.list_models())
    with pytest.raises(ValueError, match="unknown model 'resnet17'.*resnet18"):
        models.get_model("resnet17")


@pytest.mark.parametrize("name", sorted(TV))
def test_state_dict_is_torchvisions(name):
    state = build(name).state_dict()
    assert [[k, list(v.shape)] for k, v in state.items()] == TV[name]["state_dict"]


@pytest.mark.parametrize("name", sorted(TV))
def test_parameter_count_is_torchvisions_published_figure(name):
    kw = {"aux_logits": False} if name == "googlenet" else {}  # published without the auxiliary heads
    assert count(build(name, **kw)) == TV[name]["num_params"]


@pytest.mark.parametrize("name", sorted(OTHERS))
def test_parameter_count_of_models_torchvision_lacks(name):
    assert count(build(name)) == OTHERS[name]


def test_alexnet_paper_groups_and_response_normalisation():
    model = build("alexnet_paper")
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    assert [c.groups for c in convs] == [1, 2, 1, 2, 2]
    assert [tuple(c.weight.shape) for c in convs] == [
        (96, 3, 11, 11),
        (256, 48, 5, 5),
        (384, 256, 3, 3),
        (384, 192, 3, 3),
        (256, 192, 3, 3),
    ]
    lrn = [m for m in model.features if isinstance(m, nn.LocalResponseNorm)]
    assert [(m.size, m.alpha, m.beta, m.k) for m in lrn] == [(5, 1e-4, 0.75, 2.0)] * 2


def test_num_classes_changes_only_the_head():
    state = build("resnet18", num_classes=7).state_dict()
    assert state["fc.weight"].shape == (7, 512) and state["fc.bias"].shape == (7,)
    assert build("squeezenet1_1", num_classes=7).state_dict()["classifier.1.weight"].shape == (7, 512, 1, 1)


def test_initialisation_follows_torchvision():
    """Seeded: the same seed gives the same weights. Statistics of torchvision's rules: ResNet convs
    kaiming_normal_(fan_out) -> std sqrt(2 / (K*R*S)); batch norms 1 / 0; VGG linears N(0, 0.01), zero bias;
    SqueezeNet's final conv N(0, 0.01); GoogLeNet's truncated normal within +-2 (std 0.01)."""
    nn.manual_seed(3)
    a = models.resnet18()
    nn.manual_seed(3)
    b = models.resnet18()
    assert all(np.array_equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    w = a.layer3[0].conv2.weight.data  # (256, 256, 3, 3): fan_out = 256 * 9
    assert w.std() == pytest.approx(np.sqrt(2 / (256 * 9)), rel=0.02)
    assert np.all(a.bn1.weight.data == 1) and np.all(a.bn1.bias.data == 0)
    assert models.resnet18(zero_init_residual=True).layer1[0].bn2.weight.data.max() == 0
    sq = models.squeezenet1_1()
    assert sq.classifier[1].weight.data.std() == pytest.approx(0.01, rel=0.05)
    assert np.all(sq.classifier[1].bias.data == 0)
    g = models.googlenet(aux_logits=False).inception4a.branch2[1].conv.weight.data
    assert g.std() == pytest.approx(0.01, rel=0.02) and np.abs(g).max() <= 2.0
    d = models.densenet121().features.denseblock3.denselayer5.conv2.weight.data  # kaiming_normal_, fan_in
    assert d.std() == pytest.approx(np.sqrt(2 / (128 * 9)), rel=0.02)


def test_alexnet_paper_initialisation_is_the_papers():
    """N(0, 0.01) weights; biases 1 in conv2, conv4, conv5, fc6 and fc7, 0 in conv1, conv3 and fc8."""
    nn.manual_seed(0)
    model = models.alexnet_paper()
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert [float(m.bias.data.mean()) for m in layers] == [0, 1, 0, 1, 1, 1, 1, 0]
    assert all(m.weight.data.std() == pytest.approx(0.01, rel=0.05) for m in layers)


def test_no_init_draws_nothing():
    nn.manual_seed(5)
    with nn.no_init():
        model = models.vgg11()
    assert all(not p.data.any() for n, p in model.named_parameters())
    assert nn.init.default_generator().random() == np.random.default_rng(5).random()


def test_googlenet_transform_input_gradient_by_finite_differences(rng):
    from fastconv.models.googlenet import transform_input

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 2, 3)

        def forward(self, x):
            return self.conv(transform_input(x))

    nn.manual_seed(0)
    model = Net().to(np.float64).to("numpy")
    x = rng.standard_normal((2, 3, 5, 5))
    r = rng.standard_normal(model(x).shape)
    model(x)
    gx = model.backward(r)
    directional_grad_check(lambda x: float(np.sum(model(x) * r)), {"x": x}, {"x": gx}, rng)
    # the op itself: y[:, c] = x[:, c] * std_c / 0.5 + (mean_c - 0.5) / 0.5
    expected = (
        x * (np.array([0.229, 0.224, 0.225]) / 0.5)[:, None, None]
        + ((np.array([0.485, 0.456, 0.406]) - 0.5) / 0.5)[:, None, None]
    )
    np.testing.assert_allclose(transform_input(x), expected, rtol=1e-15)


def test_squeezenet_input_gradient_by_finite_differences(rng):
    """A whole model in training mode (batch statistics), float64 on the reference backend. h is small because
    with h = 1e-6 some of the ~10^5 ReLU inputs and max-pool candidates would cross a kink; larger models have
    more of them and are checked against torch autograd instead (tests marked torchvision)."""
    nn.manual_seed(1)
    model = models.squeezenet1_1(num_classes=5, dropout=0.0).to(np.float64).to("numpy")
    x = rng.standard_normal((2, 3, 33, 35))
    r = rng.standard_normal((2, 5))
    model(x)
    gx = model.backward(r)
    assert all(p.grad is not None for p in model.parameters())
    directional_grad_check(lambda x: float(np.sum(model(x) * r)), {"x": x}, {"x": gx}, rng, h=1e-7, n_dirs=2, tol=1e-5)


def test_googlenet_training_forward_returns_the_aux_logits_and_backward_reaches_them(rng):
    nn.manual_seed(2)
    model = models.googlenet(num_classes=4, transform_input=True)
    x = rng.standard_normal((2, 3, 40, 40)).astype(np.float32)
    out = model(x)
    assert type(out).__name__ == "GoogLeNetOutputs" and [o.shape for o in out] == [(2, 4)] * 3
    gx = model.backward(tuple(np.ones_like(o) for o in out))
    assert gx.shape == x.shape and np.isfinite(gx).all()
    assert np.abs(model.aux1.fc2.weight.grad).max() > 0 and np.abs(model.aux2.conv.conv.weight.grad).max() > 0
    model.eval()
    assert model(x).shape == (2, 4)  # eval mode: the logits only, as torchvision
