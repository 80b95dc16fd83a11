"""Inference and training throughput, with step-time statistics, memory and fraction of peak.

Method (the defaults are those of ``python -m bench run --help``):

- warm up until the median step time of the last 3 steps is within 5 % of the 3 before
  (at most 50 steps or 30 s), then time at least ``--min-steps`` steps and at least
  ``--min-time`` seconds; samples per second is samples over the total timed time.
- CUDA: CUDA events per step and one synchronisation before and after the loop; CPU:
  ``perf_counter``. ``torch.compile`` is triggered and timed (``compile_time_s``) before
  warm-up, never inside the timed loop.
- out of memory: the batch size is halved and retried (``batch_size_reduced``) unless
  ``--no-retry``; ``--batch-search`` looks for the fastest batch (``batch_search``).
- fraction of peak: a large matrix product at the same precision on the same device gives
  ``peak_gmacs_per_sec``: one figure per (machine, device, precision) per run, the best of
  samples spread over the run: one before the first model in the parent process
  (``prepare``, best of several timings, handed to every worker) and one after each timed
  candidate in the model's worker (the model's best is ``peak_sample_gmacs_per_sec``); when
  the run ends, ``finalize`` sets every row to its run's best. A shared machine's speed
  drifts by 10-20 % over tens of seconds, so one sample at the start is not its peak.
  ``achieved_gmacs_per_sec`` is the model's MACs (fvcore, batch 1) times samples per second
  (training counts 3x the forward MACs, the usual estimate).
- ``run --repeats N``: every configuration measured in N rounds interleaved over the models
  (the runner's sweep) and configurations (``reverse`` rounds); samples per second is the
  median over the rounds (``rounds_samples_per_sec``). Each record keeps its step times
  (``step_times_ms``, capped), energy over the timed loop where readable, and ``build_s`` /
  ``load_s`` apart from the loop.
- runtimes (``--runtime``): PyTorch, ONNX Runtime, OpenVINO and runtime plugins (``runtimes``,
  the entry-point group ``cnn_bench.runtimes``); one record per (mode, batch, runtime), with
  the runtime's agreement with PyTorch eager fp32.
- scenarios (``--scenario``, MLPerf's names): ``single-stream`` (batch 1, at least 64
  queries, p50/p90/p99 latency), ``sync`` (the loop above; the default) and ``offline`` (the
  most samples/s: PyTorch's pinned instances, ``offline``, or a runtime's offline session);
  ``--loadgen``: MLCommons' LoadGen issues the queries (``loadgen``).

The runner measures each model in its own process (``isolate = True``; see
``bench.executors.isolate``).

The wing, top to bottom (each module imports only those below it): ``harness`` (the harness and
one model's rows), ``optimize`` (the ``--optimize`` search) beside ``batch_search`` (``--batch-
search``), ``quantize`` (INT8 through the runtimes that have it, and the lossy candidates' turn
at the accuracy gate), ``sessions`` (a runtime's session timed, fp32, bf16 and INT8 alike; a
candidate measured in its runtime), ``measure`` (one PyTorch candidate timed, with back-off on
out of memory), ``levers`` (the PyTorch candidates of ``--optimize``: the layout x precision
grid, batch norm folding, compile modes) beside ``offline`` (PyTorch's offline instances in
pinned worker processes) and ``loadgen`` (LoadGen's test and summary), ``peak`` (the run's
matrix-product peak), ``model_run`` (one model's measurement), ``gate`` (real weights, the
gate's images and the ``Gate`` that judges each lossy candidate against eager fp32, image by
image), ``reference`` (eager fp32 outputs and agreement), ``backend`` (device, threads and
memory), ``config`` (options), ``runtimes`` (the registry of runtimes beside PyTorch, their
contract and one file per runtime), ``timing`` (warm-up, timed loop with the collector paused,
and step statistics) and ``rounds`` (``run --repeats``: one model's rounds merged per
configuration, by the median of rounds that ``--optimize`` judges its candidates by too). This
package is cheap to import: torch is imported inside functions.
"""

from bench.harness.throughput.config import ThroughputConfig
from bench.harness.throughput.harness import ThroughputHarness

__all__ = ["ThroughputConfig", "ThroughputHarness"]
