"""OpenVINO: ``openvino.convert_model`` from the PyTorch module, compiled for the CPU plugin.

Sync and single-stream: the LATENCY performance hint and one infer request, with the thread
count PyTorch is given. Offline: the THROUGHPUT hint (the plugin chooses its streams) and an
``AsyncInferQueue`` of ``OPTIMAL_NUMBER_OF_INFER_REQUESTS`` requests; a given concurrency sets
the streams and the requests. One call is a wave: every request started on the input and all
waited for.

INT8: NNCF's post-training quantization of the converted model (``nncf.quantize``, its default
preset: symmetric int8 weights and activations with fast bias correction), calibrated in
batches of the timing input's shape; the quantized model is compiled like an fp32 one (the
scenario's hint, the offline queue) without a precision hint. The packages are imported
inside functions.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
import warnings

from bench.harness.throughput.runtimes.base import (
    OFFLINE,
    SINGLE_STREAM,
    SYNC,
    Runtime,
    Session,
    calibration_batches,
    dist_version,
    scenario_info,
    step,
)

HINTS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}  # INFERENCE_PRECISION_HINT
INT8 = "int8"  # a quantized model: no precision hint, its layers run as NNCF quantized them


def convert_openvino(model, x, **kwargs):
    """``openvino.convert_model`` of the PyTorch module at ``x`` (``kwargs``: its other options)."""
    import openvino as ov

    with step("OpenVINO convert_model"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convert_model traces with torch.jit (deprecated)
        return ov.convert_model(model, example_input=x, **kwargs)


def capabilities() -> set[str]:
    import openvino as ov

    return set(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def compile_config(threads: int, precision: str, scenario: str, concurrency: int | None) -> dict:
    """The CPU plugin's configuration: the LATENCY hint, or THROUGHPUT offline (with
    ``concurrency`` as its streams and requests when given); the precision hint, except for
    an INT8 model (the plugin's default for what NNCF left unquantized)."""
    config = {
        "INFERENCE_NUM_THREADS": int(threads),
        "PERFORMANCE_HINT": "THROUGHPUT" if scenario == OFFLINE else "LATENCY",
    }
    if precision != INT8:
        config["INFERENCE_PRECISION_HINT"] = HINTS[precision]
    if scenario == OFFLINE and concurrency is not None:
        config["NUM_STREAMS"] = int(concurrency)
        config["PERFORMANCE_HINT_NUM_REQUESTS"] = int(concurrency)
    return config


def _offline(compiled, tensor, concurrency: int | None):
    """(one wave's call, its requests, streams): an AsyncInferQueue of the plugin's optimal
    number of requests (or ``concurrency``), every request on ``tensor``."""
    import openvino as ov

    requests = int(concurrency or compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    queue = ov.AsyncInferQueue(compiled, requests)
    for request in queue:
        request.set_input_tensor(tensor)

    def infer():
        for _ in range(requests):
            queue.start_async()
        queue.wait_all()
        return queue[0].get_output_tensor(0).data

    return infer, requests, int(compiled.get_property("NUM_STREAMS"))


class OpenVino(Runtime):
    name = "openvino"
    label = "OpenVINO"
    packages = {"openvino": "openvino"}  # noqa: RUF012
    version_package = "openvino"
    int8_packages = {"nncf": "nncf"}  # noqa: RUF012
    precisions = ("fp32", "bf16", "fp16")
    devices = ("cpu",)
    scenarios = (SYNC, SINGLE_STREAM, OFFLINE)

    def skip_reason(self, device: str, precision: str, scenario: str = SYNC) -> str | None:
        if device == "cuda":
            return "skipped: OpenVINO has no CUDA device; measure it with --device cpu"
        caps = capabilities()
        if precision != "fp32" and precision.upper() not in caps:
            return (
                f"skipped: OpenVINO's CPU plugin has no native {precision} here "
                f"(capabilities: {', '.join(sorted(caps))})"
            )
        return super().skip_reason(device, precision, scenario)

    def open_session(self, model, x, threads, device, precision, scenario=SYNC,
                     concurrency=None) -> Session:  # fmt: skip
        start = time.perf_counter()
        ov_model = convert_openvino(model, x)
        export_s = time.perf_counter() - start
        config = compile_config(threads, precision, scenario, concurrency)
        return self._session(ov_model, x, threads, config, export_s, scenario, concurrency)[0]

    def _session(self, ov_model, x, threads, config, export_s, scenario, concurrency):
        """(the Session of ``ov_model`` compiled with ``config`` on ``x``: one request per
        call, or offline waves of an AsyncInferQueue; the compiled model)."""
        import openvino as ov

        core = ov.Core()
        with step("OpenVINO compile_model"):
            compiled = core.compile_model(ov_model, "CPU", config)
        tensor = ov.Tensor(x.detach().cpu().numpy())
        provider = f"CPU ({core.get_property('CPU', 'FULL_DEVICE_NAME')})"
        batch = int(x.shape[0])
        session = Session(self.name, dist_version(self.version_package), provider, export_s,
                          threads, lambda: None, samples_per_call=batch)  # fmt: skip
        if scenario == OFFLINE:
            session.infer, requests, streams = _offline(compiled, tensor, concurrency)
            session.samples_per_call = batch * requests
            session.scenario_info = scenario_info(
                OFFLINE, streams=streams, requests=requests,
                threads_per_instance=max(1, threads // max(1, streams)),
            )  # fmt: skip
            return session, compiled
        request = compiled.create_infer_request()
        request.set_input_tensor(tensor)

        def infer():
            request.infer()
            return request.get_output_tensor(0).data

        session.infer, session.scenario_info = infer, scenario_info(scenario)
        return session, compiled

    def quantize(self, model, x, calibration, threads: int):
        # NNCF imports its torch backend, whose import of torch.utils.cpp_extension warns "No CUDA
        # runtime is found" on every CPU machine with a CUDA build of torch: noise for a CPU run
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
        import nncf

        nncf.set_log_level(logging.ERROR)
        batches = calibration_batches(calibration, int(x.shape[0]))
        ov_model = convert_openvino(model, x, input=[tuple(x.shape)])
        # NNCF draws its progress bars (rich) on stdout whatever its log level: kept off the
        # run's output
        with (
            step("NNCF INT8 quantization"),
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            return nncf.quantize(ov_model, nncf.Dataset(batches), subset_size=len(batches))

    def open_quantized(self, graph, x, threads, scenario=SYNC, concurrency=None) -> Session:
        config = compile_config(threads, INT8, scenario, concurrency)
        start = time.perf_counter()
        session, compiled = self._session(graph, x, threads, config, 0.0, scenario, concurrency)
        session.export_time_s = time.perf_counter() - start
        request = compiled.create_infer_request()  # the gate's own, beside the timed ones

        def predict(xb):
            request.infer([xb.detach().cpu().numpy()])
            return request.get_output_tensor(0).data.copy()

        session.predict = predict
        return session


RUNTIME = OpenVino()
