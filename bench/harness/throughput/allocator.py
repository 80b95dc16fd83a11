"""glibc's malloc under the timed loop: why a step page-faults, and the policy that stops it.

glibc hands freed memory back to the kernel. A block above its mmap threshold is mapped for
each allocation and unmapped when freed, and the free top of the heap is trimmed above the trim
threshold; the next step then faults its activations in again, every page zeroed by the kernel.
Both thresholds start at 128 KiB and glibc raises them (to at most 32 and 64 MiB) as the process
frees larger blocks, so one model ran faster late in a process than early: ``--optimize``'s first
round was slower for every PyTorch candidate (ResNet-50, 224 px, batch 16, fp32: 355,000 page
faults a step in round 1, 238,000 in round 2; with freed memory kept, none).

``keep`` (the default): freed memory stays in the process (``M_MMAP_MAX`` 0: no block is mapped
on its own; ``M_TRIM_THRESHOLD`` at its maximum: the heap is not trimmed), so a warmed-up step
faults nothing in and every round meets the same allocator, as under jemalloc or tcmalloc,
which PyTorch's CPU tuning guide recommends. Before each timing the memory freed so far is
returned (``malloc_trim``), so that one candidate's leftovers neither serve nor crowd the next,
and the warm-up faults in what the candidate needs. ``system``: glibc as it is. Where the C
library is not glibc (macOS, musl) nothing is changed and the record says so.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os

KEEP, SYSTEM = "keep", "system"
POLICIES = (KEEP, SYSTEM)

# mallopt's parameters (malloc.h) and glibc's defaults, restored when a policy's block ends
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
GLIBC_TRIM_THRESHOLD, GLIBC_MMAP_MAX = 128 * 1024, 65536
INT_MAX = 2**31 - 1  # mallopt takes an int


@functools.cache
def glibc():
    """The C library when it is glibc (its ``mallopt`` and ``malloc_trim``), else None."""
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):  # musl knows the name and answers None
            return None
        libc = ctypes.CDLL(None)
        libc.mallopt, libc.malloc_trim  # noqa: B018 - present in glibc, absent elsewhere
    except (AttributeError, OSError, ValueError):
        return None
    return libc


def minor_faults() -> int:
    """This process's minor page faults so far: each a page the kernel mapped (and zeroed)."""
    import resource  # POSIX only: the reports import this module elsewhere too

    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def release_freed_memory() -> None:
    """Return the memory freed so far to the kernel (glibc's ``malloc_trim``; elsewhere,
    nothing): the next timing starts from the same allocator whatever ran before it."""
    libc = glibc()
    if libc is not None:
        libc.malloc_trim(0)


@contextlib.contextmanager
def malloc_policy(policy: str):
    """Under ``keep``, glibc keeps freed memory for the block (module docstring); yields the
    policy as the record states it: 'keep', 'system', or where ``keep`` cannot be had
    'system (not glibc)' or 'system (mallopt refused)'. On leaving, glibc's default limits
    come back (fixed: glibc raises them no more) and the kept memory is returned."""
    libc = glibc() if policy == KEEP else None
    if policy != KEEP or libc is None:
        yield SYSTEM if policy != KEEP else f"{SYSTEM} (not glibc)"
        return
    if not _set(libc, INT_MAX, 0):
        _set(libc, GLIBC_TRIM_THRESHOLD, GLIBC_MMAP_MAX)  # undo the half glibc may have taken
        yield f"{SYSTEM} (mallopt refused)"
        return
    try:
        yield KEEP
    finally:
        _set(libc, GLIBC_TRIM_THRESHOLD, GLIBC_MMAP_MAX)
        libc.malloc_trim(0)


def _set(libc, trim_threshold: int, mmap_max: int) -> bool:
    """Set glibc's trim threshold and mmap limit; whether glibc took both."""
    ok = libc.mallopt(M_TRIM_THRESHOLD, trim_threshold) == 1
    return libc.mallopt(M_MMAP_MAX, mmap_max) == 1 and ok
