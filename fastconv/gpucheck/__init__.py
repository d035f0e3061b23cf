"""`fastconv gpu-check`: the one-command proof of the "cuda" backend on a machine with a GPU.

For a machine that has CuPy, PyTorch (CUDA), Numba and pytest installed but no package registry: run from a copied
checkout (`scripts/gpu_check.sh`, or `PYTHONPATH=. python -m fastconv gpu-check`), it runs each step below as a
child process with its own time budget (a step that fails or runs out of time is recorded and the run goes on),
writes everything into one folder per run (bench_results/gpu/<machine>-<UTC time>/ by default) and prints a
summary, also written as summary.md:

  env               nvidia-smi, GPU name, CUDA / CuPy / torch / cuDNN / Numba versions          (envinfo.py)
  tests-small       pytest -m gpu at SMALL_TUNABLES (many blocks on tiny shapes)
  tests-production  pytest -m gpu at the production tunables, plus tests/test_gpu_large.py's multi-wave shapes
  memcheck          compute-sanitizer --tool memcheck on a small kernel set                    (smoke.py)
  racecheck         compute-sanitizer --tool racecheck on the same set
  memops            BN, pooling and ReLU against the device copy bandwidth of the same process   (memops.py)
  bench-gpu-quick   fastconv bench, quick suite: cuda against torch-cuda-fp32 and torch-cuda-tf32
  bench-gpu-resnet50  the same on ResNet-50's distinct conv layers, fwd, bwd-data, bwd-weight, N=32
  bench-cpu-quick   the quick suite on the host cores: numba against torch on CPU (a second machine for REPORT.md)
  report            fastconv bench report of the run's results files into the run folder

`--dry-run` lists every step and command and runs only what needs no GPU. steps.py builds the plan, execute.py
runs it, summary.py reads the outputs back.
"""
