"""benchdnn problem descriptors: parse and print, round trips, benchdnn's own printing, deduction rules, errors."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastconv as fc
from fastconv.bench.cases import QUICK, ConvProblem, NormProblem, PoolProblem
from fastconv.bench.descriptor import parse, to_descriptor


@pytest.mark.parametrize("case", QUICK, ids=lambda c: f"{c.problem.name}-{c.op}")
def test_quick_cases_round_trip(case):
    text = to_descriptor(case.problem)
    assert parse(text) == case.problem
    assert to_descriptor(parse(text)) == text


# Inputs and the short form benchdnn itself printed for them (a benchdnn perf log: `perf,<name>,--dir=FWD_D <desc>`);
# benchdnn leaves the name bare, fastconv quotes it.
BENCHDNN_PRINTED = [
    (
        'g1mb1_ic3ih224iw224_oc64oh112ow112_kh7kw7_sh2sw2_ph3pw3_n"resnet18_0"',
        'mb1ic3ih224oc64oh112kh7sh2ph3n"resnet18_0"',
    ),
    ('g1mb1_ic64ih56iw56_oc64oh56ow56_kh3kw3_sh1sw1_ph1pw1_n"resnet18_1"', 'mb1ic64ih56oc64oh56kh3ph1n"resnet18_1"'),
]


@pytest.mark.parametrize("given_text, printed", BENCHDNN_PRINTED)
def test_prints_benchdnn_short_form(given_text, printed):
    assert to_descriptor(parse(given_text)) == printed


def test_conv_entries_map_to_pytorch_arguments():
    p = parse('mb8ic64ih56oc64oh56kh3ph1n"resnet50:layer1.0.conv2"')
    assert p == ConvProblem("resnet50:layer1.0.conv2", 8, 64, 56, 56, 64, 3, 3, stride=1, padding=1)
    # benchdnn counts dilation from 0: dh1 is PyTorch's dilation 2; g is groups; mb defaults to 2
    assert parse("g4ic8ih9oc12oh9kh3ph2dh1") == ConvProblem("", 2, 8, 9, 9, 12, 3, 3, padding=2, dilation=2, groups=4)
    # non-square: every w entry given
    assert parse("mb1ic3ih10iw12oc4oh10ow12kh3kw5ph1pw2sh1sw1") == ConvProblem(
        "", 1, 3, 10, 12, 4, 3, 5, padding=(1, 2)
    )


def test_output_size_without_padding_deduces_padding_and_asymmetric_end():
    # ph = ((5-1)*2 - 10 + 3) / 2 = 0 (rounded toward zero); the bottom pad is (5-1)*2 - 10 + 3 - 0 = 1:
    # exactly TensorFlow-style 'same' for stride 2
    p = parse("mb1ic2ih10oc3oh5kh3sh2")
    assert p.padding == ((0, 1), (0, 1))
    import numpy as np

    x, w = np.zeros((1, 2, 10, 10), np.float32), np.zeros((3, 2, 3, 3), np.float32)
    assert fc.conv2d(x, w, stride=2, padding="same", backend="numpy").shape == (1, 3, 5, 5)
    assert p.params().padding == ((0, 1), (0, 1)) and p.params().P == 5


def test_padding_without_output_deduces_output():
    assert parse("ic3ih227oc96kh11sh4").params().P == 55  # alexnet conv1: (227 - 11) / 4 + 1


def test_pool_and_bnorm_descriptors():
    assert parse('mb96ic768_ih17oh17_kh3sh1ph1n"v3:pool"') == PoolProblem(
        "v3:pool", 96, 768, 17, 17, kernel=3, stride=1, padding=1
    )
    # an output that only ceil mode gives: (7 - 2) / 2 rounded up, + 1 = 4
    assert parse("ic2ih7oh4kh2sh2").ceil_mode is True
    assert parse("ic2ih6oh3kh2sh2").ceil_mode is False
    bn = parse('mb96_ic192_ih71iw71_n"v3:bn"')
    assert bn == NormProblem("v3:bn", 96, 192, 71, 71, eps=1 / 16)  # benchdnn's default eps
    assert parse(to_descriptor(NormProblem("x", 8, 64, 112, 100))) == NormProblem("x", 8, 64, 112, 100)


@pytest.mark.parametrize(
    "text, message",
    [
        ("ic3ih9oc4oh9kh3xx1", "cannot read an entry"),
        ("ic3ic4ih9oc4kh3", "given twice"),
        ("ic3id5ih9oc4kh3", "3-D"),
        ("g2ic3ih9oc4kh3", "dividing"),
        ("ic1ih10oc1oh2kh3", "must be >= 1 and the padding >= 0"),
        ("ic3ih9oc4", "needs ih and kh"),
        ("ic3ih9iw9oc4kh3", "iw and kw"),
        ("mb2ic3ih9kh3eps0.1", "do not belong to a pool descriptor"),
        ('ic3ih9oc4kh3ph1n"two words"', "must not contain spaces"),
        ("ic2ih7oh5kh2sh2", "max_pool2d cannot express it"),
        ("", "non-empty"),
    ],
)
def test_bad_descriptors_are_rejected_with_a_reason(text, message):
    with pytest.raises(ValueError, match=message):
        parse(text)


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 4),
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(1, 12),
    st.integers(1, 12),
    st.integers(1, 4),
    st.integers(1, 4),
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(0, 2),
    st.integers(0, 2),
    st.integers(0, 2),
    st.integers(0, 2),
    st.integers(1, 2),
    st.integers(1, 2),
)
def test_any_valid_conv_round_trips(N, cg, kg, H, W, R, S, sh, sw, pt, pb, pl, pr, dh, dw):
    groups = 2 if (cg + kg) % 2 else 1
    padding = ((pt, pb), (pl, pr))
    try:
        problem = ConvProblem(
            "t",
            N,
            cg * groups,
            H,
            W,
            kg * groups,
            R,
            S,
            stride=(sh, sw),
            padding=padding,
            dilation=(dh, dw),
            groups=groups,
        )
        params = problem.params()
    except ValueError:  # the kernel does not fit this input: not a conv
        return
    parsed = parse(to_descriptor(problem))
    # the same output (bottom/right padding that no window reaches may be dropped)
    assert parsed.params().y_shape == params.y_shape
    assert parsed.params().padding[0][0] == pt and parsed.params().padding[1][0] == pl
    assert (parsed.params().stride, parsed.params().dilation, parsed.params().groups) == (
        params.stride,
        params.dilation,
        params.groups,
    )
    assert to_descriptor(parsed) == to_descriptor(problem)
