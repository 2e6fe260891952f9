"""Fix the number of CPU threads torch uses, so float results do not depend on who started the run.

Why: on CPU, torch splits reductions (matmuls, sums, softmax) into one chunk per intra-op thread, and
on some CPUs (AVX-512) the result's last bits change with the chunk count. Snakemake sets
``OMP_NUM_THREADS`` to a rule's ``threads``, DVC passes on the caller's environment and a shell may set
anything, so without a fixed count the same params give different models under different engines.
``num_threads`` in ``params.yaml`` (train and evaluate) pins it.
"""

from __future__ import annotations

import contextlib
import os

__all__ = ["set_torch_threads"]

# Environment variables read by the OpenMP/MKL runtimes and by Lightning (which, when
# OMP_NUM_THREADS is unset, picks its own count for each DDP process): set them too, so child
# processes (DDP ranks, data-loader workers) agree with this one.
_THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def set_torch_threads(num_threads: int) -> None:
    """Use exactly ``num_threads`` intra-op threads (and as many inter-op ones) from now on; 0 = leave as is.

    Call it before any torch computation: the inter-op pool can only be sized before first use (if it
    is already running it keeps its size, which does not change results).
    """
    if num_threads <= 0:
        return
    import torch

    for name in _THREAD_ENV:
        os.environ[name] = str(num_threads)
    torch.set_num_threads(num_threads)
    if torch.get_num_interop_threads() != num_threads:
        with contextlib.suppress(RuntimeError):  # "cannot set ... after parallel work has started"
            torch.set_num_interop_threads(num_threads)
