"""fastconv.summary: the course's hand counts, torchvision's published GMACs, receptive fields, the tiling
warning, activation memory, and the shapes it works out against those of a real forward."""

import gzip
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import fastconv as fc
import fastconv.nn as nn
from fastconv import cli, models
from fastconv.nn.tape import Observer, observe

TV = json.loads(gzip.open(Path(__file__).parent / "data" / "torchvision_models.json.gz", "rt").read())["models"]


def build(name, **kw):
    with nn.no_init():
        return models.get_model(name, **kw)


def quiet_summary(model, shape):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fc.summary(model, shape)


def test_ten_5x5_filters_on_32x32x3_with_pad_2():
    s = fc.summary(nn.Sequential(nn.Conv2d(3, 10, 5, padding=2)), (1, 3, 32, 32))
    (row,) = s.rows
    assert (row.params, row.output_shape, s.total_params) == (760, (1, 10, 32, 32), 760)  # 10 * (5*5*3 + 1)
    assert row.macs == 32 * 32 * 10 * 5 * 5 * 3 and row.rf_size == (5, 5)


def test_receptive_fields_of_stacks():
    three = nn.Sequential(*(nn.Conv2d(1, 1, 3, padding=1) for _ in range(3)))
    assert [r.rf_size for r in fc.summary(three, (1, 1, 9, 9)).rows] == [(3, 3), (5, 5), (7, 7)]
    strided = nn.Sequential(nn.Conv2d(1, 1, 3, 2, 1), nn.MaxPool2d(2), nn.Conv2d(1, 1, 3, dilation=2, padding=2))
    rows = fc.summary(strided, (1, 1, 16, 16)).rows
    assert [(r.rf_size, r.rf_jump) for r in rows] == [((3, 3), (2, 2)), ((5, 5), (4, 4)), ((21, 21), (4, 4))]
    # 3 + (2-1)*2 = 5 after the pool; the dilated 3x3 spans 5: 5 + (5-1)*4 = 21


class NaiveInception(nn.Module):
    """The course's naive Inception module: 1x1x128, 3x3x192, 5x5x96 and a 3x3 max pool, concatenated."""

    def __init__(self):
        super().__init__()
        self.b1 = nn.Conv2d(256, 128, 1)
        self.b3 = nn.Conv2d(256, 192, 3, padding=1)
        self.b5 = nn.Conv2d(256, 96, 5, padding=2)
        self.pool = nn.MaxPool2d(3, 1, 1)

    def forward(self, x):
        return nn.cat([self.b1(x), self.b3(x), self.b5(x), self.pool(x)], 1)


def test_naive_inception_on_28x28x256_costs_854M_multiply_adds():
    s = fc.summary(NaiveInception(), (1, 256, 28, 28))
    assert s.total_macs == 28 * 28 * 256 * (128 * 1 + 192 * 9 + 96 * 25) == 854_196_224
    cat = s.rows[-1]
    assert (cat.name, cat.kind, cat.output_shape) == ("cat", "cat", (1, 128 + 192 + 96 + 256, 28, 28))
    assert cat.rf_size == (5, 5)  # branches meet: the widest one's field


def test_vgg16_forward_activations_are_15_2M_values():
    s = fc.summary(build("vgg16"), (1, 3, 224, 224))
    # input + each conv, pool and FC output once (the cs231n table's per-layer numbers)
    per_layer = (
        224 * 224 * 3
        + 2 * 224 * 224 * 64
        + 112 * 112 * 64
        + 2 * 112 * 112 * 128
        + 56 * 56 * 128
        + 3 * 56 * 56 * 256
        + 28 * 28 * 256
        + 3 * 28 * 28 * 512
        + 14 * 14 * 512
        + 3 * 14 * 14 * 512
        + 7 * 7 * 512
        + 4096
        + 4096
        + 1000
    )
    assert per_layer == 15_237_608 and s.activation_bytes == 4 * per_layer  # 60.95 MB at float32
    assert all(r.activation_bytes == 0 for r in s.rows if r.kind in ("ReLU", "Dropout", "flatten"))
    assert s.total_macs == 15_470_264_320 and s.total_params == 138_357_544


@pytest.mark.parametrize("name", sorted(TV))
def test_macs_equal_torchvisions_published_gflops(name):
    s = quiet_summary(build(name), (1, 3, 224, 224))
    assert round(s.total_macs / 1e9, 3) == TV[name]["gmacs"]


def test_receptive_fields_of_known_networks():
    """VGG-16 pool5 212 and AlexNet conv5 (pooled) 195, as Araujo et al. (Distill 2019) list. ResNet-50: 427;
    their 483 is the original ResNet, whose stride sits on the bottleneck's first 1x1 conv: torchvision's
    (v1.5) strides the 3x3, which loses 2 * jump in each of stages 2-4: 8 + 16 + 32 = 56."""

    def field(name, row):
        return {r.name: r.rf_size for r in quiet_summary(build(name), (1, 3, 224, 224)).rows}[row]

    assert field("vgg16", "features.30") == (212, 212)
    assert field("alexnet", "features.12") == (195, 195)
    assert field("resnet50", "layer4.2.add") == (483 - 56, 483 - 56)


def test_stride_that_does_not_tile_its_input_is_flagged():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, stride=3))
    with pytest.warns(UserWarning, match=r"stride 3 does not tile its 7x7 input .*last 1 row\(s\) and 1 column"):
        s = fc.summary(model, (1, 1, 7, 7))
    assert s.rows[0].output_shape == (1, 2, 2, 2) and s.warnings == [s.rows[0].warning]
    text = str(s).splitlines()
    assert text[3].startswith("0 !") and text[-1].startswith("! 0 (Conv2d): stride 3 does not tile")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fc.summary(model, (1, 1, 9, 9))  # tiles exactly
        fc.summary(nn.Sequential(nn.Conv2d(1, 1, 1, stride=2)), (1, 1, 56, 56))  # sub-sampling by design
        fc.summary(build("alexnet_paper"), (1, 3, 227, 227))
    conv1 = build("alexnet_paper").features[0]  # 11x11/4: the paper's "224" does not tile, 227 does
    with pytest.warns(UserWarning, match=r"stride 4 does not tile its 224x224 input \(window 11, padding 0\)"):
        fc.summary(nn.Sequential(conv1), (1, 3, 224, 224))


def test_zfnet_and_alexnet_paper_map_sizes_are_the_papers():
    pools = [r.output_shape for r in quiet_summary(build("zfnet"), (1, 3, 224, 224)).rows if r.kind == "MaxPool2d"]
    assert pools == [(1, 96, 55, 55), (1, 256, 13, 13), (1, 256, 6, 6)]
    pools = [r.output_shape for r in fc.summary(build("alexnet_paper"), (1, 3, 227, 227)).rows if r.kind == "MaxPool2d"]
    assert pools == [(1, 96, 27, 27), (1, 256, 13, 13), (1, 256, 6, 6)]


class _Shapes(Observer):
    """Records the output shape of every op of a real forward."""

    def __init__(self):
        self.shapes = []

    def run(self, name, forward, inputs):
        out, saved = forward(*inputs)
        self.shapes.append(tuple(out.shape))
        return out, saved


@pytest.mark.parametrize(
    "name, shape, kw",
    [
        ("lenet5", (2, 1, 32, 32), {}),
        ("simple_cnn", (1, 1, 28, 28), {}),
        ("resnet18", (1, 3, 45, 45), {}),
        ("googlenet", (1, 3, 64, 64), {"transform_input": True}),
        ("squeezenet1_0", (1, 3, 64, 64), {}),
        ("densenet121", (1, 3, 40, 40), {}),
        ("alexnet", (1, 3, 70, 70), {}),
        ("nin", (1, 3, 67, 67), {}),
        ("vgg11_bn", (1, 3, 32, 32), {}),
    ],
)
def test_shapes_equal_a_real_forward(name, shape, kw, rng):
    model = build(name, **kw).eval()
    real = _Shapes()
    with observe(real):
        y = model(rng.standard_normal(shape).astype(np.float32))
    s = quiet_summary(model, shape)
    assert [r.output_shape for r in s.rows] == real.shapes and s.rows[-1].output_shape == y.shape


def test_totals_modes_and_conv_layers():
    model = build("googlenet").train()
    s = fc.summary(model, (1, 3, 224, 224))
    assert model.training and all(m.training for m in model.modules())
    assert s.total_params == 13_004_888 and sum(r.params for r in s.rows) == 6_624_904  # aux heads unused
    assert "6,379,984 not used by this forward" in str(s)
    convs = fc.summary(build("resnet50"), (2, 3, 224, 224)).conv_layers()
    assert len(convs) == 53
    name, p = convs[0]
    assert name == "conv1" and (p.N, p.C, p.H, p.W, p.K, p.R, p.stride, p.padding) == (
        2,
        3,
        224,
        224,
        64,
        7,
        (2, 2),
        ((3, 3), (3, 3)),
    )
    assert sum(p.macs for _, p in convs) == 2 * (4_089_184_256 - 2_048_000)  # all but the fc


def test_formats():
    s = fc.summary(build("lenet5"), (1, 1, 32, 32))
    doc = json.loads(s.to_json())
    assert doc["total_params"] == 61_706 and doc["rows"][0]["output_shape"] == [1, 6, 28, 28]
    assert s.to_csv().splitlines()[0].startswith("name,kind,input_shape,output_shape,params,macs")
    assert s.to_csv().splitlines()[1].startswith("features.0,Conv2d,1x1x32x32,1x6x28x28,156,117600,")
    text = str(s)
    assert "parameters   61,706" in text and "features.0" in text


def test_bad_calls():
    with pytest.raises(ValueError, match=r"summary: conv1.conv \(Conv2d\).*3 input channels.*'x'.*\(1, 1, 64, 64\)"):
        fc.summary(build("googlenet"), (1, 1, 64, 64))
    with pytest.raises(ValueError, match="summary: 'input_shape' must be a tuple of positive ints"):
        fc.summary(build("lenet5"), (1, 0, 32, 32))
    with pytest.raises(TypeError, match="summary: 'model' must be a fastconv.nn.Module"):
        fc.summary("resnet18", (1, 3, 224, 224))
    with pytest.raises(ValueError, match=r"summary: classifier.0 \(Linear\).*must end in in_features=400"):
        fc.summary(build("lenet5"), (1, 1, 36, 36))


def test_cli(capsys):
    assert cli.main(["summary", "resnet18", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["model"] == "resnet18"
    assert round(doc["total_macs"] / 1e9, 3) == 1.814 and doc["input_shape"] == [1, 3, 224, 224]
    assert cli.main(["summary", "squeezenet1_1", "--input", "2,3,64,64"]) == 0
    out = capsys.readouterr().out
    assert "input 2x3x64x64" in out and "! features.0 (Conv2d): stride 2 does not tile" in out
    assert cli.main(["summary", "lenet5", "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("name,kind,")
    with pytest.raises(SystemExit):
        cli.main(["summary", "lenet5", "--input", "1,x,32"])
    assert "--input must be comma-separated ints" in capsys.readouterr().err
