"""Regenerate fastconv/data/digits.npz from scikit-learn's bundled handwritten digits (run once; needs the
`data` extra: pip install ".[data]").

The 1,797 8x8 images hold integers 0..16, stored as uint8 (N, 8, 8) with uint8 labels, compressed: ~45 kB, so
`fastconv train` needs neither scikit-learn nor a download.
"""

from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

OUT = Path(__file__).resolve().parents[1] / "fastconv" / "data" / "digits.npz"

if __name__ == "__main__":
    digits = load_digits()
    images = digits.images.astype(np.uint8)
    assert np.array_equal(images, digits.images), "digits pixels are integers 0..16"
    np.savez_compressed(OUT, images=images, labels=digits.target.astype(np.uint8))
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes): images {images.shape}, labels {digits.target.shape}")
