"""What the first GPU run needs, checked on the CPU: signals, error rows, the peak, OOM
clean-up, devices in reports, the fine-tune loop's bookkeeping and the GPU scripts' plumbing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import weakref

import pytest
from conftest import REPO, make_distribution

from bench.harness import HARNESSES
from bench.harness.base import Job, RunConfig
from bench.harness.throughput import ThroughputHarness
from bench.harness.throughput import measure as tpm
from bench.harness.throughput import peak as tpp
from bench.harness.throughput.backend import model_tf32
from bench.harness.throughput.config import Settings
from bench.harness.throughput.model_run import ModelRun
from bench.registry.lookup import ModelSpec
from bench.runner import run
from bench.storage import ResultStore

# -- defect 4: SIGTERM stops a run as Ctrl-C does ---------------------------------------------
SLEEPY_PLUGIN = """
    import os, time
    from torch import nn

    def quick(pretrained=False, **kwargs):
        return nn.Sequential(nn.Flatten(), nn.Linear(4, 2))

    quick.input_size = (1, 2, 2)

    def sleepy(pretrained=False, **kwargs):
        with open(os.environ["SLEEPY_PID_FILE"], "w") as f:
            f.write(str(os.getpid()))
        time.sleep(600)

    sleepy.input_size = (1, 2, 2)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_sigterm_keeps_records_marks_the_run_and_kills_the_worker(tmp_path):
    site = make_distribution(
        tmp_path / "site",
        "sleepy-plugin",
        {"quick": "sleepy_mod:quick", "sleepy": "sleepy_mod:sleepy"},
        {"sleepy_mod": SLEEPY_PLUGIN},
    )
    pid_file = tmp_path / "worker.pid"
    env = dict(os.environ, SLEEPY_PID_FILE=str(pid_file))
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(site), env.get("PYTHONPATH", "")])
    out = tmp_path / "results"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", "run", "--models", "quick,sleepy", "--harness",
         "throughput", "--device", "cpu", "--batch-size", "2", "--min-time", "0.05",
         "--min-steps", "2", "--out", str(out)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while not pid_file.exists() or not pid_file.read_text():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the sleepy worker never started"
        time.sleep(0.2)
    worker = int(pid_file.read_text())
    assert _alive(worker)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "Traceback" not in stderr
    assert "stopped by signal" in stderr
    time.sleep(0.5)
    assert not _alive(worker), "the isolated worker outlived its parent"
    (doc_path,) = out.glob("*/*.json")
    doc = json.loads(doc_path.read_text())
    assert doc["status"] == "interrupted"
    assert [(r["model"], r["status"]) for r in doc["records"]] == [("quick", "ok")]


# -- defect 5: an error row says where it failed ---------------------------------------------
class FailsOnTheGpu:
    name = "fails_on_gpu"

    @staticmethod
    def device_for(options):
        return "cuda"

    def measure(self, job):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")


def test_error_rows_carry_the_harness_device(monkeypatch, tmp_path):
    monkeypatch.setitem(HARNESSES, "fails_on_gpu", f"{__name__}:FailsOnTheGpu")
    monkeypatch.setattr("bench.harness.device.device_name", lambda device: f"Fake {device}")
    spec = ModelSpec(name="m", source="test", input_size=(1, 2, 2))
    doc = run([spec], ["fails_on_gpu"], RunConfig(), ResultStore(tmp_path))
    (rec,) = doc.records
    assert rec["status"] == "error"
    assert "illegal memory access" in rec["error"]
    assert (rec["device"], rec["device_name"]) == ("cuda", "Fake cuda")


def test_throughput_and_finetune_say_where_they_measure():
    from bench.harness.finetune.harness import FinetuneHarness

    assert ThroughputHarness.device_for(RunConfig(device="cpu")) == "cpu"
    assert FinetuneHarness.device_for(RunConfig(device="cpu")) == "cpu"


# -- defect 7 (and 8): the peak uses the model's settings -------------------------------------
def test_peak_uses_tf32_exactly_when_an_fp32_model_may():
    import torch

    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    before = (cudnn.allow_tf32, matmul.allow_tf32)  # torch's flag objects: no monkeypatch
    try:
        assert not model_tf32("cpu", "fp32")
        cudnn.allow_tf32, matmul.allow_tf32 = True, False
        assert model_tf32("cuda", "fp32")  # cuDNN's convolutions run in TF32
        assert not model_tf32("cuda", "bf16")
        cudnn.allow_tf32 = False
        assert not model_tf32("cuda", "fp32")
        matmul.allow_tf32 = True
        assert model_tf32("cuda", "fp32")
    finally:
        cudnn.allow_tf32, matmul.allow_tf32 = before


@pytest.mark.parametrize(("precision", "tf32"), [("fp32", True), ("fp32", False), ("bf16", False)])
def test_peak_product_runs_at_the_models_precision_and_tf32(monkeypatch, precision, tf32):
    import torch

    seen = []

    def fake_mm(a, b, out=None):
        seen.append((a.dtype, torch.backends.cuda.matmul.allow_tf32))
        return out

    monkeypatch.setattr(torch, "mm", fake_mm)
    monkeypatch.setattr(tpp, "_PEAK_CACHE", {})
    before = torch.backends.cuda.matmul.allow_tf32
    info = tpp.matmul_peak("cpu", precision, tf32=tf32, min_time_s=0.0)
    dtype = torch.float32 if precision == "fp32" else torch.bfloat16
    assert seen
    assert set(seen) == {(dtype, tf32)}
    assert torch.backends.cuda.matmul.allow_tf32 == before  # restored
    assert info["peak_tf32"] is tf32
    assert precision in info["peak_method"]
    assert ("(TF32)" in info["peak_method"]) is tf32


# -- defect 9: memory of a failed attempt is freed, a compiled attempt is reset ---------------
class _Tensorish:
    """Stands in for a tensor that the failed attempt's frame holds."""


def test_oom_memory_is_freed_after_the_except_block(monkeypatch):
    refs, freed_then = [], []

    def fake_measure_at(run, cand, batch, compare=False):
        held = _Tensorish()
        refs.append(weakref.ref(held))
        if batch > 1:
            raise RuntimeError("CUDA out of memory. Tried to allocate 1 TiB")
        return {"samples_per_sec": 1.0}

    def fake_free(device):
        freed_then.append(all(r() is None for r in refs))

    monkeypatch.setattr(tpm, "measure_at", fake_measure_at)
    monkeypatch.setattr(tpm, "free_memory", fake_free)
    cand = tpm.Candidate("infer", "fp32", False, False)
    job = Job(ModelSpec(name="m", source="test", input_size=(1, 2, 2)))
    metrics, used = tpm.measure_with_backoff(ModelRun(job, Settings(), "cpu"), cand, 4)
    assert used == 1
    assert metrics == {"samples_per_sec": 1.0}
    assert freed_then == [True, True], "the failed attempts' objects were alive when freeing"


def test_compiled_attempt_resets_dynamo_also_on_failure(monkeypatch):
    import torch
    import torch._dynamo

    resets = []
    monkeypatch.setattr(torch, "compile", lambda model: model)
    monkeypatch.setattr(torch._dynamo, "reset", lambda: resets.append(1))

    def oom(*args, **kwargs):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(tpm, "time_steps", oom)
    spec = ModelSpec(name="m", source="test", input_size=(1, 2, 2))
    cand = tpm.Candidate("infer", "fp32", False, True)
    run = ModelRun(Job(spec), Settings(), "cpu", model=torch.nn.Identity())
    with pytest.raises(RuntimeError, match="out of memory"):
        tpm.measure_at(run, cand, 2)
    assert resets == [1]


# -- defect 10: two GPUs are two rows ---------------------------------------------------------
def test_latest_keeps_one_row_per_device_name():
    import pandas as pd

    from bench.report.records import latest

    base = {"model": "resnet50", "harness": "throughput", "device": "cuda", "config_key": "{}"}
    frame = pd.DataFrame(
        [
            {**base, "device_name": "NVIDIA H200", "finished_utc": "2026-01-01", "run_id": "a"},
            {**base, "device_name": "NVIDIA H100", "finished_utc": "2026-01-02", "run_id": "b"},
            {**base, "device_name": "NVIDIA H100", "finished_utc": "2026-01-03", "run_id": "c"},
        ]
    )
    kept = latest(frame)
    assert sorted(zip(kept["device_name"], kept["run_id"], strict=True)) == [
        ("NVIDIA H100", "c"),
        ("NVIDIA H200", "a"),
    ]


# -- defect 11: the fine-tune loop's bookkeeping ----------------------------------------------
def test_epoch_time_is_the_slowest_ranks(monkeypatch):
    import torch.distributed as dist

    from bench.harness.finetune.distributed import slowest_rank_time

    ops = []

    def fake_all_reduce(t, op):
        ops.append(op)
        t.fill_(7.5)  # the slowest rank's time

    monkeypatch.setattr(dist, "all_reduce", fake_all_reduce)
    assert slowest_rank_time(2.0, 1, "cpu") == 2.0
    assert not ops
    assert slowest_rank_time(2.0, 2, "cpu") == 7.5
    assert ops == [dist.ReduceOp.MAX]


def test_samples_per_sec_leaves_out_epochs_with_set_up():
    from bench.harness.finetune.train import steady_samples_per_sec

    curve = [
        {"epoch_time_s": 10.0, "train_samples": 100, "includes_setup": True},
        {"epoch_time_s": 1.0, "train_samples": 100, "includes_setup": False},
        {"epoch_time_s": 1.0, "train_samples": 100, "includes_setup": False},
    ]
    assert steady_samples_per_sec(curve) == (100.0, 2)
    assert steady_samples_per_sec(curve[:1]) == (10.0, 0)  # nothing else: all, and says so


def test_rng_state_round_trip_and_cuda_slot():
    import torch

    from bench.harness.finetune.checkpoint import rng_state, set_rng_state

    state = rng_state("cpu")
    assert state["cuda"] is None
    a = torch.rand(3)
    set_rng_state(state)
    assert torch.equal(torch.rand(3), a)


def test_staged_run_marks_set_up_epochs(tmp_path):
    import torch

    from bench.harness.datasets import load_dataset
    from bench.harness.finetune.config import TrainConfig
    from bench.harness.finetune.train import train
    from bench.registry.lookup import Registry

    data = load_dataset("digits")
    data.x_train, data.y_train = data.x_train[::8].clone(), data.y_train[::8].clone()
    torch.manual_seed(0)
    model = Registry().get("simple_cnn").build(num_classes=10, in_chans=1)
    cfg = TrainConfig(epochs=3, protocol="staged", head_epochs=1, batch_size=32, img_size=8,
                      progress=False)  # fmt: skip
    mean, std = data.mean_std()
    result = train(model, data, cfg, in_chans=1, mean=mean, std=std,
                   checkpoint=tmp_path / "ck.pt", run_key={"k": 1})  # fmt: skip
    assert [p["includes_setup"] for p in result.curve] == [True, True, False]
    assert result.speed_epochs == 1
    saved = torch.load(tmp_path / "ck.pt", weights_only=True)
    assert set(saved["rng"]) == {"cpu", "cuda"}


# -- the GPU scripts, rehearsed on the CPU ----------------------------------------------------
def _script(*args, **env):
    return subprocess.run(
        ["bash", *args], cwd=REPO, capture_output=True, text=True, timeout=900,
        env={**os.environ, "PYTHON": sys.executable, **env},
    )  # fmt: skip


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.skipif(
    _cuda_available(), reason="on a CUDA host the scripts start real GPU runs: no exit 2 to see"
)
def test_gpu_scripts_say_no_cuda_in_one_line(tmp_path):
    for script in ("scripts/gpu_all.sh", "scripts/gpu_check.sh", "scripts/gpu_finetune_check.sh"):
        done = _script(script, "--out", str(tmp_path), WHEELS=str(tmp_path / "none"))
        assert done.returncode == 2, (script, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1
        assert "--rehearse" in done.stderr


def test_gpu_all_refuses_an_unknown_option_before_anything_runs():
    done = _script("scripts/gpu_all.sh", "--bogus")
    assert done.returncode == 2
    assert "unknown option '--bogus'" in done.stderr


@pytest.mark.slow
def test_gpu_all_rehearsal_end_to_end(tmp_path):
    """gpu_wheels.sh, then gpu_all.sh --rehearse: the install step, every part, the summary."""
    wheels = tmp_path / "wheels"
    built = _script("scripts/gpu_wheels.sh", str(wheels))
    assert built.returncode == 0, built.stderr
    assert "MiB in" in built.stdout
    assert len(list(wheels.glob("*.whl"))) == 8
    out = tmp_path / "out"
    done = _script("scripts/gpu_all.sh", "--rehearse", "--out", str(out), WHEELS=str(wheels),
                   CNN_BENCH_SITE=str(tmp_path / "site"))  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (tmp_path / "site" / "fvcore").is_dir()  # the carried wheels were installed
    summary = (out / "summary.md").read_text()
    assert summary.rstrip().endswith("0 failed")
    for log in ("gpu_check_eager.txt", "gpu_check_compiled.txt", "gpu_finetune_check.txt"):
        assert "exit status 0" in (out / log).read_text(), log
    docs = [json.loads(p.read_text()) for p in (out / "results").glob("*/*.json")]
    records = [r for d in docs for r in d["records"]]
    kinds = {(r["harness"], r["config"].get("compiled")) for r in records}
    assert kinds == {("throughput", False), ("throughput", True), ("finetune", None)}
    assert all(r["status"] == "ok" for r in records)
    assert all(d["status"] == "complete" for d in docs)
