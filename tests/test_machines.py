"""Machine identity: what changes speeds (CPU model, ISA level, logical CPUs; GPU) is part of
a machine's id and label, so two VMs sold under one CPU name are two machines everywhere."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import LONG_MACHINE, STORE, copy_runs

from bench.environment import (
    NO_FLAGS,
    cpu_flags,
    isa_level,
    machine_info,
    machine_key,
    short_cpu_name,
)
from bench.report.generate import generate
from bench.report.records import read_records

AVX512 = ["avx2", "fma", "avx512f", "avx512bw", "avx512_bf16", "avx512_vnni"]
EPYC = {"system": "Linux", "arch": "x86_64", "cpu": "AMD EPYC", "cores": 2}


@pytest.mark.parametrize(
    ("flags", "level"),
    [
        (["avx2", "fma"], "AVX2"),
        (["avx2", "fma", "avx_vnni"], "AVX2 VNNI"),
        (AVX512, "AVX-512 BF16 VNNI"),
        ([*AVX512, "amx_tile", "amx_bf16", "amx_int8"], "AVX-512 BF16 VNNI AMX"),
        (["avx2", "avx512f", "avx512_vnni"], "AVX-512 VNNI"),
        (["asimd", "asimddp", "i8mm", "bf16"], "NEON BF16 I8MM DOTPROD"),
        (["asimd", "sve", "sve2", "bf16"], "SVE2 BF16"),
        ([], "baseline"),
        (None, None),
    ],
)
def test_isa_level_names_what_changes_the_kernels(flags, level):
    assert isa_level(flags) == level


def test_arm_features_are_read_from_cpuinfo():
    text = "processor\t: 0\nFeatures\t: fp asimd evtstrm asimddp sve i8mm bf16\n"
    assert isa_level(cpu_flags(text)) == "SVE BF16 I8MM DOTPROD"


def test_short_cpu_names_drop_trademarks_and_clocks():
    assert short_cpu_name("Intel(R) Xeon(R) Platinum 8480+ CPU @ 2.00GHz") == (
        "Intel Xeon Platinum 8480+"
    )
    assert short_cpu_name("AMD EPYC 7B13 64-Core Processor") == "AMD EPYC 7B13"
    assert short_cpu_name("AMD EPYC") == "AMD EPYC"


def test_one_cpu_name_with_other_flags_is_another_machine():
    avx2 = machine_key({**EPYC, "cpu_flags": ["avx2", "fma"]})
    avx512 = machine_key({**EPYC, "cpu_flags": AVX512})
    unknown = machine_key({**EPYC, "cpu_flags": None})
    same = machine_key({**EPYC, "cpu_flags": ["fma", "avx2"], "node": "another-vm"})
    assert avx2[1] == "AMD EPYC · AVX2 · 2 vCPU"
    assert avx512[1] == "AMD EPYC · AVX-512 BF16 VNNI · 2 vCPU"
    assert unknown[1] == f"AMD EPYC · {NO_FLAGS} · 2 vCPU"
    assert len({avx2[0], avx512[0], unknown[0]}) == 3
    assert len({avx2[1], avx512[1], unknown[1]}) == 3
    assert same == avx2  # the same CPU, flags and cores on another node: the same machine
    more = machine_key({**EPYC, "cpu_flags": AVX512, "cores": 4})
    assert more[0] != avx512[0]
    assert "4 vCPU" in more[1]


def test_gpu_model_and_count_are_part_of_the_machine():
    one = machine_key({**EPYC, "cpu_flags": AVX512, "gpu": {"name": "NVIDIA H200", "count": 1}})
    eight = machine_key({**EPYC, "cpu_flags": AVX512, "gpu": {"name": "NVIDIA H200", "count": 8}})
    assert one[1].startswith("NVIDIA H200 · AMD EPYC")
    assert eight[1].startswith("8x NVIDIA H200 · ")
    assert one[0] != eight[0]


def test_this_machines_id_names_its_isa_level():
    info = machine_info()
    level = isa_level(cpu_flags())
    assert (level or NO_FLAGS) in info["id"]
    assert info["label"] == machine_key(info)[1]


def _one_run(tmp_path, flags_of_copy):
    """A store with one committed AVX-512 run and a copy of it whose flags differ."""
    store = tmp_path / "results"
    src = next(p for p in sorted(STORE.glob("*/*.json")) if "_46aac3ca" in p.name)
    (store / src.parent.name).mkdir(parents=True)
    shutil.copy(src, store / src.parent.name / src.name)
    copy_runs(store, store, {"cpu_flags": flags_of_copy}, "c", lambda d: True)
    return store


def test_a_copy_with_avx2_flags_is_another_machine_in_every_report(tmp_path):
    import pandas as pd

    store = _one_run(tmp_path, ["avx2", "fma"])
    out = tmp_path / "reports"
    generate(store, out)
    table = pd.read_csv(out / "results.csv")
    fast, slow = "AMD EPYC · AVX-512 BF16 VNNI · 2 vCPU", "AMD EPYC · AVX2 · 2 vCPU"
    assert set(table["machine"]) == {fast, slow}
    assert table["machine_id"].nunique() == 2
    assert (table["machine"] == fast).sum() == (table["machine"] == slow).sum()
    seen = 0
    for path in [*out.glob("*.md"), out / "index.html"]:
        text = path.read_text(encoding="utf-8")
        if fast in text:
            seen += 1
            assert slow in text, f"{path.name} names {fast!r} but not the AVX2 copy"
    assert seen >= 3  # throughput.md, machines.md, the page at least


def test_runs_without_flags_are_their_own_machine_with_what_they_prove(tmp_path):
    store = _one_run(tmp_path, None)
    doc_path = next(p for p in store.glob("*/*.json") if "_c" in p.name)
    doc = json.loads(doc_path.read_text())
    assert doc["machine"]["cpu_flags"] is None
    records = read_records(store)
    labels = {r.machine for r in records.runs.values()}
    assert labels == {"AMD EPYC · AVX-512 BF16 VNNI · 2 vCPU", f"AMD EPYC · {NO_FLAGS} · 2 vCPU"}
    out = tmp_path / "reports"
    generate(store, out)
    text = (out / "machines.md").read_text()
    assert f"- AMD EPYC · {NO_FLAGS} · 2 vCPU: runs made before" in text
    # this run skipped no bf16 candidate for want of BF16: nothing is proven
    assert "prove: nothing about its flags" in " ".join(text.split())


def test_a_skip_for_want_of_bf16_is_stated_as_proof(tmp_path):
    store = _one_run(tmp_path, None)
    doc_path = next(p for p in store.glob("*/*.json") if "_c" in p.name)
    doc = json.loads(doc_path.read_text())
    doc["records"][0].setdefault("metrics", {})["note"] = "skipped: no native BF16 on this device"
    doc_path.write_text(json.dumps(doc))
    out = tmp_path / "reports"
    generate(store, out)
    text = " ".join((out / "machines.md").read_text().split())
    assert "no native BF16: the run skipped a bf16 candidate for want of it (runs c46aac3c)" in text


def test_the_committed_store_splits_the_two_epyc_vms():
    runs = read_records(STORE).runs.values()
    labels = {r.machine for r in runs if r.cpu == "AMD EPYC"}
    assert labels == {"AMD EPYC · AVX-512 BF16 VNNI · 2 vCPU", f"AMD EPYC · {NO_FLAGS} · 2 vCPU"}


def test_the_long_label_reaches_the_reports(committed_reports):
    label = "Intel Xeon Platinum 8480+ · AVX-512 BF16 VNNI AMX · 224 vCPU"
    assert label == machine_key({**EPYC, **LONG_MACHINE})[1]
    assert label in (committed_reports / "results.csv").read_text(encoding="utf-8")
    assert label in (committed_reports / "machines.md").read_text(encoding="utf-8")
    assert label in (committed_reports / "index.html").read_text(encoding="utf-8")
