"""On-disk cache keys for the numba kernels that cover what a kernel depends on, not only its own file.

Numba keys a cached kernel by the source of the file that defines it. A kernel also compiles in code from other
files: the SIMD intrinsics (simd.py, simd_lanes.py), the tile constants (config.py), helpers of other modules
(channel_sums.py for batch norm), ceil_div (fastconv/params/common.py). Edit one of those and Numba would load the
old machine code. Here every kernel of this package carries a fingerprint of all of them (a SHA-256 of their
contents) in its cache stamp: an edit anywhere in them recompiles every kernel on its next use, and nothing else
does (Numba's own key already covers the Numba version, the CPU and its features). The cache stays where Numba
puts it (NUMBA_CACHE_DIR, else __pycache__ beside the sources, else the user cache folder).
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from numba.core import caching

_PACKAGE = Path(__file__).resolve().parent
_SOURCES = (*sorted(_PACKAGE.glob("*.py")), _PACKAGE.parent.parent / "params" / "common.py")


@functools.lru_cache(maxsize=1)
def fingerprint() -> str:
    """SHA-256 over the names and contents of every file the kernels compile code from."""
    digest = hashlib.sha256()
    for path in _SOURCES:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


class _Fingerprinted:
    """A Numba cache locator for this package's kernels whose source stamp includes the fingerprint."""

    def get_source_stamp(self):
        return super().get_source_stamp(), fingerprint()

    @classmethod
    def from_function(cls, py_func, py_file):
        if Path(py_file).resolve().parent != _PACKAGE:
            return None
        return super().from_function(py_func, py_file)


class UserProvided(_Fingerprinted, caching.UserProvidedCacheLocator):
    pass


class InTree(_Fingerprinted, caching.InTreeCacheLocator):
    pass


class UserWide(_Fingerprinted, caching.UserWideCacheLocator):
    pass


def install() -> None:
    """Put the fingerprinted locators first (in Numba's order of preference), once, before any kernel is made."""
    locators = caching.CacheImpl._locator_classes
    if UserProvided not in locators:
        locators[:0] = [UserProvided, InTree, UserWide]
