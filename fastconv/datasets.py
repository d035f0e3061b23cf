"""Small datasets shipped inside the package (no download at run time).

digits: scikit-learn's bundled handwritten digits (1,797 grey 8x8 images of 0-9, pixel values 0..16), stored
in fastconv/data/digits.npz by scripts/make_digits_npz.py.
"""

from __future__ import annotations

from importlib import resources

import numpy as np


def load_digits(scale: int = 3, border: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels): images float32 (1797, 1, S, S) with S = 8*scale + 2*border, pixels scaled to [0, 1];
    each 8x8 pixel becomes a scale x scale block (nearest neighbour) framed by `border` zero pixels. The default
    gives LeNet-5's 32x32 input with the digit in the central 24x24, as LeNet saw MNIST. labels int64 (1797,)."""
    for name, v, low in (("scale", scale, 1), ("border", border, 0)):
        if not isinstance(v, int) or isinstance(v, bool) or v < low:
            raise ValueError(f"load_digits: '{name}' must be an int >= {low}, got {v!r}")
    with resources.files("fastconv").joinpath("data/digits.npz").open("rb") as f, np.load(f) as data:
        images, labels = data["images"], data["labels"]
    up = images.repeat(scale, axis=1).repeat(scale, axis=2)
    framed = np.pad(up, ((0, 0), (border, border), (border, border)))
    return (framed[:, None] / np.float32(16)).astype(np.float32), labels.astype(np.int64)


def split(n: int, test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, held-out indices): a seeded random permutation of range(n), the last
    round(n * test_fraction) of it held out."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"split: 'test_fraction' must lie in (0, 1), got {test_fraction!r}")
    order = np.random.default_rng(seed).permutation(n)
    n_test = round(n * test_fraction)
    return np.sort(order[: n - n_test]), np.sort(order[n - n_test :])
