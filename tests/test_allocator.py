"""``--malloc``: glibc's policy for freed memory under the timed loop (issue 26: the slow
first round). Each allocator test runs in a fresh interpreter, whose glibc has not yet raised
its thresholds; a 48 MiB block lies above the highest threshold glibc raises to (32 MiB)."""

import subprocess
import sys

import pytest

from bench.errors import ConfigError
from bench.harness.throughput import allocator
from bench.harness.throughput.config import ThroughputConfig

glibc_only = pytest.mark.skipif(allocator.glibc() is None, reason="the C library is not glibc")

PROBE = """
import sys
from bench.harness.throughput.allocator import malloc_policy, minor_faults

def faults(n, size=48 << 20):
    out = []
    for _ in range(n):
        before = minor_faults()
        block = bytearray(size)  # zero-filled: every page touched
        del block
        out.append(minor_faults() - before)
    return out

with malloc_policy(sys.argv[1]) as policy:
    inside = faults(4)
after = faults(3)
print(policy, *inside, "|", *after)
"""


def _probe(policy: str) -> tuple[str, list[int], list[int]]:
    """The policy as recorded, the page faults of 4 allocations of 48 MiB under it and of 3
    after it, in a fresh interpreter."""
    out = subprocess.run([sys.executable, "-c", PROBE, policy], capture_output=True, text=True,
                         check=True).stdout.split()  # fmt: skip
    bar = out.index("|")
    return out[0], [int(v) for v in out[1:bar]], [int(v) for v in out[bar + 1 :]]


@glibc_only
def test_keep_faults_a_freed_block_in_once_and_then_reuses_it():
    policy, inside, after = _probe("keep")
    assert policy == "keep"
    assert inside[0] > 1000  # the first allocation grows the heap: its pages fault in
    assert max(inside[1:]) < 50, inside  # the same block again: nothing to fault in
    # the block's end restores glibc's limits: a large block is mapped and unmapped again
    assert min(after) > 1000, after


@glibc_only
def test_system_faults_a_large_block_in_at_every_allocation():
    policy, inside, _ = _probe("system")
    assert policy == "system"
    assert min(inside) > 1000, inside  # mapped for each allocation, unmapped when freed


def test_keep_where_glibc_is_absent_changes_nothing_and_says_so(monkeypatch):
    monkeypatch.setattr(allocator, "glibc", lambda: None)
    with allocator.malloc_policy("keep") as policy:
        assert policy == "system (not glibc)"
    with allocator.malloc_policy("system") as policy:
        assert policy == "system"
    allocator.release_freed_memory()  # a no-op, not an error


def test_keep_that_glibc_refuses_is_recorded_as_system(monkeypatch):
    calls = []

    class Refusing:
        def mallopt(self, param, value):
            calls.append((param, value))
            return 0

        def malloc_trim(self, pad):
            raise AssertionError("nothing was kept, nothing to return")

    monkeypatch.setattr(allocator, "glibc", Refusing)
    with allocator.malloc_policy("keep") as policy:
        assert policy == "system (mallopt refused)"
    # what glibc might have taken of the policy is set back to its defaults at once
    assert calls[-2:] == [(allocator.M_TRIM_THRESHOLD, allocator.GLIBC_TRIM_THRESHOLD),
                          (allocator.M_MMAP_MAX, allocator.GLIBC_MMAP_MAX)]  # fmt: skip


def test_an_unknown_policy_is_a_config_error():
    with pytest.raises(ConfigError, match="--malloc never: expected one of keep, system"):
        ThroughputConfig(malloc="never")
    assert ThroughputConfig().malloc == "keep"


def test_the_cli_refuses_an_unknown_policy_with_one_line_and_exit_2():
    from conftest import run_cli

    r = run_cli("run", "--models", "lenet5", "--harness", "throughput", "--malloc", "never")
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "--malloc" in r.stderr


@pytest.mark.parametrize(("policy", "released"), [("keep", 1), ("system", 0)])
def test_a_timing_returns_freed_memory_first_only_under_keep(monkeypatch, policy, released):
    import contextlib

    from bench.harness.throughput import measure
    from bench.harness.throughput.config import Settings

    calls = []
    monkeypatch.setattr(measure, "release_freed_memory", lambda: calls.append(1))
    s = Settings(malloc=policy, min_time_s=0.01, min_steps=3)
    m = measure.time_steps(lambda: bytearray(1 << 16), lambda: None, 1, "cpu", s, False,
                           contextlib.nullcontext())  # fmt: skip
    assert len(calls) == released
    assert isinstance(m["page_faults_per_step"], int)
    assert m["page_faults_per_step"] >= 0
