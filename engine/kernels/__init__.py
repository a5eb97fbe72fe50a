"""Hand-written GPU kernels (Triton) for the hot paths that eager PyTorch runs as many small launches."""
