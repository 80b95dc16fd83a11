"""An example runtime plugin: TorchScript, the model traced at the timed input and frozen.

A runtime is a subclass of cnn-bench's ``Runtime`` (``bench.harness.throughput.runtimes.base``)
registered under the entry-point group ``cnn_bench.runtimes``; ``--runtime torchscript``
measures it, ``--optimize`` tries it beside the others.
"""

from __future__ import annotations

import time

from bench.harness.throughput.runtimes.base import Runtime, Session, scenario_info, step


class TorchScript(Runtime):
    name = "torchscript"
    label = "TorchScript (frozen)"
    packages = {"torch": "torch"}  # noqa: RUF012
    version_package = "torch"
    precisions = ("fp32",)
    devices = ("cpu",)

    def open_session(self, model, x, threads, device, precision, scenario="sync",
                     concurrency=None) -> Session:  # fmt: skip
        import torch

        start = time.perf_counter()
        with step("TorchScript trace and freeze"), torch.no_grad():
            frozen = torch.jit.freeze(torch.jit.trace(model.eval(), x))
        build_s = time.perf_counter() - start

        def infer():
            with torch.inference_mode():
                return frozen(x).numpy()

        return Session(self.name, torch.__version__, "cpu (torch.jit)", build_s, threads, infer,
                       samples_per_call=int(x.shape[0]),
                       scenario_info=scenario_info(scenario))  # fmt: skip
