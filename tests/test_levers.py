"""The GPU levers, rehearsed on the CPU: --optimize's candidate list (levers), batch norm
folding, --batch-search, and the fine-tune step's device-side draws and fused AdamW.

Never speed: tiny models, a few steps, one thread; the CUDA runs are in tests/test_gpu_levers.py.
"""

from __future__ import annotations

import pytest

from bench.errors import OutOfMemoryError
from bench.harness import get_harness, make_job
from bench.harness.throughput import batch_search as bs
from bench.harness.throughput import levers
from bench.harness.throughput.measure import Candidate
from bench.registry.lookup import ModelSpec

torch = pytest.importorskip("torch")
nn = torch.nn

FAST = {"min_time_s": 0.01, "min_steps": 3, "threads": 1, "batch_sizes": (4,), "isolate": False}
OOM_MESSAGE = "DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 TiB"


def conv_bn(pretrained=False, **kwargs):
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10)
    )


def no_norm(pretrained=False, **kwargs):
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))


class _OOMAbove(nn.Module):
    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit
        self.net = conv_bn()

    def forward(self, x):
        if x.shape[0] > self.limit:
            raise RuntimeError(OOM_MESSAGE)
        return self.net(x)


def oom_above_5(pretrained=False, **kwargs):
    return _OOMAbove(5)


def _spec(builder) -> ModelSpec:
    return ModelSpec(name=builder.__name__, source="test", input_size=(1, 8, 8), builder=builder)


def _measure(builder, **options):
    job = make_job(_spec(builder), "throughput", **{**FAST, **options})
    return get_harness("throughput").measure(job)


# -- batch norm folding --------------------------------------------------------------------------
def test_folding_batch_norm_is_exact_and_leaves_no_batch_norm():
    torch.manual_seed(0)
    model = conv_bn()
    bn = model[1]
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    bn.weight.data.uniform_(0.5, 2)
    model.eval()
    x = torch.randn(3, 1, 8, 8)
    folded = levers.fold_conv_bn(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # a copy is folded
    torch.testing.assert_close(folded(x), model(x), rtol=1e-5, atol=1e-5)


def test_folding_needs_eval_mode():
    with pytest.raises(ValueError, match="eval mode"):
        levers.fold_conv_bn(conv_bn().train())


# -- the candidate list ------------------------------------------------------------------------
ASKED = Candidate("infer", "fp32", False, False)


def test_eager_grid_adds_fp16_on_cuda_only():
    def grid(device):
        return [(c.layout, c.precision) for c in levers.eager_grid(ASKED, device)]

    assert grid("cpu") == [("nchw", "fp32"), ("nchw", "bf16"),
                           ("channels_last", "fp32"), ("channels_last", "bf16")]  # fmt: skip
    assert grid("cuda") == [("nchw", "fp32"), ("nchw", "bf16"), ("nchw", "fp16"),
                            ("channels_last", "fp32"), ("channels_last", "bf16"),
                            ("channels_last", "fp16")]  # fmt: skip
    assert levers.eager_grid(ASKED, "cuda")[0] == ASKED  # eager fp32 NCHW, the baseline, first


def test_compile_modes_on_cuda_and_folding_only_where_it_applies():
    best = Candidate("infer", "bf16", True, False)
    assert [c.compile_mode for c in levers.compiled(best, "cpu")] == [None]
    cuda = levers.compiled(best, "cuda")
    assert [c.compile_mode for c in cuda] == [None, "reduce-overhead", "max-autotune"]
    assert all(c.compiled and c.precision == "bf16" and c.channels_last for c in cuda)
    assert levers.compiled(None, "cuda") == []
    assert levers.folded(best, conv_bn())[0].fold_bn is True
    assert levers.folded(best, no_norm()) == []
    assert levers.folded(Candidate("train", "fp32", False, False), conv_bn()) == []


def test_optimize_on_cuda_tries_every_lever(monkeypatch):
    """The CUDA candidate list through --optimize, with the device checks and the timing
    stood in for (no GPU needed)."""
    from bench.harness.throughput import optimize as opt
    from bench.harness.throughput.config import Settings
    from bench.harness.throughput.model_run import ModelRun

    seen = []

    def fake_measure(run, cand, batch, compare=True):
        seen.append(cand)
        speed = 100.0 + 10 * len(seen)  # every candidate faster than the one before
        return {"infer_samples_per_sec": speed, "infer_batch_size": batch, "agrees": True}

    monkeypatch.setattr(opt, "measure_candidate", fake_measure)
    monkeypatch.setattr(opt, "supports_bf16", lambda device: True)
    job = make_job(_spec(conv_bn), "throughput", **FAST)
    s = Settings(compile=True, optimize=True, optimize_rounds=1, runtimes=("torch",))
    run = ModelRun(job, s, "cuda", conv_bn().eval())
    metrics, best = opt.optimize(run, ASKED, 4)
    rows = [r for r in metrics["candidates"] if r["runtime"] == "torch"]  # the others follow
    assert len(rows) == 6 + 1 + 3  # eager grid, folded, three compile modes
    assert rows[6]["fold_bn"] is True
    assert [r.get("compile_mode") for r in rows[7:]] == [None, "reduce-overhead", "max-autotune"]
    assert all(r["compiled"] and r["fold_bn"] for r in rows[7:])  # built on the best so far
    assert best.runtime != "torch" or best.compile_mode == "max-autotune"
    assert "compile_mode" not in rows[0]
    assert "fold_bn" not in rows[0]  # earlier records' keys only, unless a lever is pulled


# -- --batch-search ------------------------------------------------------------------------------
def _fake_speeds(monkeypatch, speeds: dict):
    """measure_or_oom standing in: samples/s per batch, out of memory where None."""

    def fake(run, cand, batch, compare=False):
        speed = speeds.get(batch)
        if speed is None:
            return None, ("OutOfMemoryError", "CUDA out of memory")
        return {"samples_per_sec": speed, "peak_mem_reserved_mb": None}, None

    monkeypatch.setattr(bs, "measure_or_oom", fake)


def _search(start: int):
    from types import SimpleNamespace

    run = SimpleNamespace(device="cpu", job=SimpleNamespace(spec=SimpleNamespace(name="m")))
    return bs.search_batch(run, ASKED, start)


def test_batch_search_doubles_while_faster_by_more_than_the_noise(monkeypatch):
    _fake_speeds(monkeypatch, {4: 100.0, 8: 190.0, 16: 300.0, 32: 305.0, 64: 900.0})
    chosen, trail = _search(4)
    assert chosen == 16  # 32 is faster by less than the margin: the search stops there
    assert [(p["batch_size"], p["samples_per_sec"]) for p in trail] == [
        (4, 100.0), (8, 190.0), (16, 300.0), (32, 305.0)
    ]  # fmt: skip


def test_batch_search_backs_off_in_timms_steps_between_the_fit_and_the_oom(monkeypatch):
    _fake_speeds(monkeypatch, {4: 100.0, 8: 200.0, 16: 400.0, 32: 800.0, 48: 1000.0})
    chosen, trail = _search(4)
    assert [p["batch_size"] for p in trail] == [4, 8, 16, 32, 64, 48]
    assert trail[4]["samples_per_sec"] is None
    assert "out of memory" in trail[4]["error"]
    assert chosen == 48


def test_batch_search_backs_off_below_a_start_that_does_not_fit(monkeypatch):
    _fake_speeds(monkeypatch, {2: 50.0, 3: 60.0})
    chosen, trail = _search(8)
    assert [p["batch_size"] for p in trail] == [8, 6, 4, 3]  # timm's decay_batch_step
    assert chosen == 3
    _fake_speeds(monkeypatch, {})
    with pytest.raises(OutOfMemoryError, match="even at batch size 1"):
        _search(4)


def test_batch_search_stops_at_the_largest_batch(monkeypatch):
    monkeypatch.setattr(bs, "MAX_BATCH", 16)
    _fake_speeds(monkeypatch, {4: 1.0, 8: 2.0, 16: 4.0, 32: 8.0})
    assert _search(4)[0] == 16


def test_batch_search_rows_carry_the_chosen_batch_and_the_trail():
    """A real (tiny) search on the CPU, out of memory above batch 5."""
    (m,) = _measure(oom_above_5, batch_search=True, batch_sizes=(2,))
    trail = m.metrics["batch_search"]
    assert [p["batch_size"] for p in trail][:2] == [2, 4]
    assert m.config["batch_search"] is True
    assert m.config["batch_size"] in {p["batch_size"] for p in trail if p["samples_per_sec"]}
    assert m.metrics["infer_batch_size"] == m.config["batch_size"] <= 5
    if trail[-1]["samples_per_sec"] is None or len(trail) > 3:
        assert {p["batch_size"] for p in trail} & {8, 6}  # grew into the limit, backed off


def test_batch_search_with_optimize_picks_at_the_chosen_batch():
    (m,) = _measure(conv_bn, batch_search=True, optimize=True, optimize_rounds=1,
                    runtimes=("torch",), batch_sizes=(2,))  # fmt: skip
    assert m.metrics["batch_search"][0]["batch_size"] == 2
    assert m.config["optimize"] is True
    assert m.metrics["infer_batch_size"] == m.config["batch_size"]


def test_batch_search_option_parses():
    from bench.cli import build_parser

    args = build_parser().parse_args(["run", "--models", "lenet5", "--batch-search"])
    assert args.batch_search is True


# -- the fine-tune step --------------------------------------------------------------------------
def test_fused_adamw_on_cuda_only(monkeypatch):
    from types import SimpleNamespace

    from bench.harness.finetune.optim import fused

    assert fused(SimpleNamespace(device="cuda")) == {"fused": True}
    assert fused(SimpleNamespace(device="cuda:1")) == {"fused": True}
    assert fused(SimpleNamespace(device="cpu")) == {}


def test_augmentation_draws_on_the_generators_device_with_the_figures_of_before():
    """With a CPU generator the draws are those earlier versions made (same seed, same
    figures); every tensor is made on the generator's device, a CUDA one on CUDA."""
    from bench.harness.finetune.augment import augment_batch, erase_batch

    gen = torch.Generator().manual_seed(0)
    x = torch.linspace(0, 1, 2 * 3 * 8 * 8).reshape(2, 3, 8, 8)
    out = [augment_batch(x, k, gen) for k in ("digits", "rot180", "chapter")]
    out.append(erase_batch(out[-1], gen, p=1.0))
    sums = [round(float(o.double().sum()), 6) for o in out]
    assert sums == [159.652926, 170.147914, 138.760531, 126.307996]
