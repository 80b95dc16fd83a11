"""The overhead floor both benchmarks check (``test_floors.py``, ``test_runtime_overhead.py``):
the harness's best samples/s over the bare loop's best, interleaved rounds of each."""

from __future__ import annotations

FLOOR = 0.97  # the harness adds at most 3 %


def check_overhead(benchmark, label: str, bare: list[float], harness: list[float]) -> float:
    """Record both series on ``benchmark``, print one ``FLOOR`` line, assert the floor."""
    ratio = max(harness) / max(bare)
    benchmark.extra_info.update(bare=bare, harness=harness, ratio=ratio)
    print(
        f"\nFLOOR {label} {' / '.join(f'{v:.2f}' for v in bare)} img/s, harness "
        f"{' / '.join(f'{v:.2f}' for v in harness)} img/s; best harness / best bare = "
        f"{ratio:.3f} (floor {FLOOR}) -> {'PASS' if ratio >= FLOOR else 'FAIL'}"
    )
    assert ratio >= FLOOR
    return ratio
