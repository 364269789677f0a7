"""Fused tensor kernels shared by the losses and the metrics.

:mod:`personpose.kernels.compiled` decides when a pure tensor function runs compiled
(``torch.compile``, the inductor backend: one C++/OpenMP loop on CPU, Triton on CUDA, in place
of one pass over memory per elementwise op) and when eagerly; :mod:`personpose.kernels.ssim`
holds the SSIM and part-based SSIM kernels written for it; :mod:`personpose.kernels.native`
builds and runs personpose's own C kernels on CPU (the evaluation's SSIM metrics and PATN
mask, the part half of the PSSIM loss; faster than inductor's loops there);
:mod:`personpose.kernels.allocator`
sets the C allocator so that freed tensors are reused without page faults (the entry points
and the benchmarks apply it; importing the package changes nothing).
"""

from personpose.kernels.compiled import Fused, compile_mode, fused, report

__all__ = ["Fused", "compile_mode", "fused", "report"]
