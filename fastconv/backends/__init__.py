"""Built-in backends, declared by name and imported on first use (see fastconv.dispatch).

default_rank orders the implicit choice for an array kind (lower first); None means "only when named".
"""

from ..dispatch import add_backend

add_backend("numpy", "numpy", "fastconv.backends.numpy_ref", default_rank=100)
add_backend("numba", "numpy", "fastconv.backends.numba_cpu", default_rank=10)
add_backend("cuda", "cupy", "fastconv.backends.cuda", default_rank=10)
add_backend("cuda-emu", "numpy", "fastconv.backends.cuda.emu", default_rank=None)
