"""Command line: ``python -m bench {list,run,report,compare}``.

Bad input is one line on stderr and exit status 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from pathlib import Path

from bench.errors import BenchError, ConfigError, Terminated

logger = logging.getLogger("bench")

EXIT_FAILED = 1  # `run`: a record failed; `compare`: a threshold was crossed
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
LATEST = "latest"  # --resume without a run id


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error that points at --help."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}. See '{self.prog} --help'.\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m bench",
        description="cnn-bench: measure the chapter's CNN architectures (and any timm, "
        "torchvision or plugin model): parameters, MACs, depth and more.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(
        dest="command", metavar="{list,run,report,compare}", parser_class=_Parser
    )
    sub.required = True

    p = sub.add_parser("list", help="list the models cnn-bench can measure",
                       description="List registered models: the chapter's table, the chapter's "
                       "own models and plugins. Patterns are shell wildcards ('convnext*').")  # fmt: skip
    p.add_argument("patterns", nargs="*", help="shell wildcards to filter names (default: all)")
    p.add_argument("--all", dest="include_timm", action="store_true",
                   help="include timm's whole catalogue (every name timm.list_models() knows)")  # fmt: skip
    p.add_argument("--torchvision", dest="include_torchvision", action="store_true",
                   help="include torchvision's classification models, as 'torchvision:NAME'")  # fmt: skip
    p.add_argument("--exclude", default="", help="comma-separated wildcards to leave out")
    p.add_argument("--harnesses", action="store_true",
                   help="list the harnesses instead, with where each comes from")  # fmt: skip

    p = sub.add_parser("run", help="measure models and store the results",
                       description="Measure models with the chosen harnesses. Records are written "
                       "to the results store as each model completes.")  # fmt: skip
    _add_run_arguments(p.add_argument_group("run"))
    from bench.harness import add_harness_arguments

    p.set_defaults(harness_dests=add_harness_arguments(p))

    p = sub.add_parser("report", help="regenerate the reports from the results",
                       description="Regenerate reports/ (markdown tables, results.csv) from the "
                       "results store. The same results always give the same files.")  # fmt: skip
    p.add_argument("--results", default="results", help="results store to read (default: results/)")
    p.add_argument(
        "--out", default="reports", help="folder to write reports to (default: reports/)"
    )
    _add_compare_parser(sub)
    return parser


def _add_run_arguments(g) -> None:
    """``run``'s own options: what to measure, where, and how (every harness reads these)."""
    from bench.harness import DEFAULT_HARNESSES
    from bench.harness.base import EXECUTORS, PRECISIONS, RunConfig
    from bench.harness.options import device, int_list, positive_float, positive_int

    d = RunConfig()
    g.add_argument("--models", default=None,
                   help="comma-separated names: registered ('resnet50'), any timm model, "
                   "'torchvision:NAME', wildcards ('convnext*'), a source's catalogue "
                   "('timm:*', 'timm:resnet*', 'torchvision:*'), or 'chapter' for the chapter's "
                   "table plus its own models (required unless --resume)")  # fmt: skip
    g.add_argument("--exclude", default="", metavar="PATTERN[,PATTERN...]",
                   help="comma-separated wildcards of model names to leave out")  # fmt: skip
    g.add_argument("--harness", default=None,
                   help="comma-separated harnesses ('python -m bench list --harnesses') or "
                   f"'all' (default: {','.join(DEFAULT_HARNESSES)})")  # fmt: skip
    g.add_argument("--out", default="results", help="results store to write to (default: results/)")
    g.add_argument("--img-size", type=positive_int, default=d.img_size,
                   help="input height and width for every model (default: each model's own)")  # fmt: skip
    g.add_argument("--device", type=device, default=d.device, metavar="{auto,cpu,cuda}",
                   help=f"where to measure; auto: CUDA when present (default: {d.device})")  # fmt: skip
    g.add_argument("--batch-size", dest="batch_sizes", type=int_list, default=d.batch_sizes,
                   metavar="N[,N...]", help="batch size; a comma list is a sweep (default: each "
                   "harness's own: throughput 256 on CUDA and 16 on the CPU, finetune 64 or the "
                   "model card's [finetune] batch_size from scratch)")  # fmt: skip
    g.add_argument("--precision", choices=PRECISIONS, default=d.precision,
                   help=f"fp32, or bf16/fp16 autocast (default: {d.precision})")  # fmt: skip
    g.add_argument("--no-isolate", dest="isolate", action="store_false", default=d.isolate,
                   help="measure in this process instead of one subprocess per model")  # fmt: skip
    g.add_argument("--model-timeout", dest="model_timeout_s", default=d.model_timeout_s,
                   type=lambda t: positive_float(t, "a positive number of seconds"), metavar="S",
                   help="an isolated model that takes longer than S seconds becomes an error "
                   f"row (default: {d.model_timeout_s:g})")  # fmt: skip
    g.add_argument("--executor", choices=EXECUTORS, default=d.executor,
                   help="local: measure here; ray: one Ray task per (model, harness group), "
                   "on --ray-address or a Ray started here (needs cnn-bench[ray]) "
                   f"(default: {d.executor})")  # fmt: skip
    g.add_argument("--ray-address", dest="ray_address", default=None, metavar="ADDRESS",
                   help="join this Ray cluster ('auto', 'ray://host:10001'); default: start "
                   "a Ray here with this machine's resources")  # fmt: skip
    g.add_argument("--resume", nargs="?", const=LATEST, default=None, metavar="RUN_ID",
                   help="complete a run (the latest in --out, or RUN_ID): skip each (model, "
                   "harness) it measured successfully, measure the rest into the same run, "
                   "and continue an interrupted fine-tune from its checkpoint")  # fmt: skip
    g.add_argument("--no-progress-bar", dest="progress_bar", action="store_false",
                   help="plain '[i/n] model: ok' lines even on a terminal")  # fmt: skip


def _add_compare_parser(sub) -> None:
    p = sub.add_parser("compare", help="compare two runs and gate regressions",
                       description="Compare BASE with NEW: each a run id (looked up in --results), "
                       "a results file, a store folder (its latest complete run; --all for every "
                       "run) or a timm results CSV. Exit status 1 when a --fail threshold is "
                       "crossed, 2 for bad input.")  # fmt: skip
    p.add_argument(
        "base", metavar="BASE", help="the reference: run id, results file, store or timm CSV"
    )
    p.add_argument("new", metavar="NEW", help="what is judged against BASE, in the same forms")
    p.add_argument("--fail", action="append", default=[], metavar="METRIC:CHANGE",
                   help="fail on a change this large, repeatable: infer_samples_per_sec:-5%%, "
                   "top1:-0.5 (points), infer_gmacs:1%% (either way), params:0 (any change)")  # fmt: skip
    p.add_argument(
        "--results",
        default="results",
        help="store in which run ids are looked up (default: results/)",
    )
    p.add_argument("--all", dest="all_runs", action="store_true",
                   help="for a store folder, every run (the latest record of each configuration)")  # fmt: skip
    p.add_argument("--metrics", default=None,
                   help="comma-separated metrics to show, or 'all' (default: the headline ones "
                   "and any named by --fail)")  # fmt: skip
    p.add_argument("--format", choices=("markdown", "csv", "json"), default="markdown")


def _print_table(rows: list[dict], columns: list[str]) -> None:
    from tabulate import tabulate

    print(
        tabulate(
            [[r.get(c, "") for c in columns] for r in rows], headers=columns, tablefmt="github"
        )
    )


def _list_harnesses() -> int:
    from bench import harness

    for w in harness.warnings():
        print(f"warning: {w}", file=sys.stderr)
    rows = []
    for name, entry in harness.entries().items():
        cls = entry.cls
        rows.append(
            {
                "harness": name,
                "provider": entry.provider,
                "default": "yes" if name in harness.DEFAULT_HARNESSES else "",
                "own process": "yes" if cls is not None and getattr(cls, "isolate", False) else "",
                "status": "failed to load" if cls is None else "",
            }
        )
    cols = ["harness", "provider", "default", "own process"]
    if any(r["status"] for r in rows):
        cols.append("status")
    _print_table(rows, cols)
    return 0


def cmd_list(args) -> int:
    from bench.registry import TORCHVISION_PREFIX, Registry

    if args.harnesses:
        return _list_harnesses()
    registry = Registry()
    for w in registry.warnings:
        print(f"warning: {w}", file=sys.stderr)
    exclude = [e for e in args.exclude.split(",") if e]
    names = registry.list_models(
        args.patterns, exclude, args.include_timm, args.include_torchvision
    )
    if not names:
        raise ConfigError(
            f"No model matches {' '.join(args.patterns) or 'the filters'}. "
            "Try 'python -m bench list --all' for timm's catalogue."
        )
    rows = []
    for name in names:
        if name in registry.conflicts:
            rows.append(
                {"model": name, "source": "CONFLICT: " + " / ".join(registry.conflicts[name])}
            )
            continue
        try:
            spec = registry.get(name)
        except BenchError as e:
            rows.append({"model": name, "source": f"error: {e}"})
            continue
        size = spec.input_size
        rows.append(
            {
                "model": name,
                "source": spec.source if not name.startswith(TORCHVISION_PREFIX) else "torchvision",
                "chapter table": "yes" if spec.in_chapter_table else "",
                "input size": "x".join(map(str, size)) if size else "?",
                "status": "failed to load" if spec.error else "",
            }
        )
    cols = ["model", "source", "chapter table", "input size"]
    if any(r.get("status") for r in rows):
        cols.append("status")
    _print_table(rows, cols)
    return 0


def _run_config(args):
    """The run-wide configuration from the options ``run`` names (not a deny-list)."""
    from bench.runner import RunConfig

    return RunConfig(
        device=args.device,
        batch_sizes=tuple(args.batch_sizes) if args.batch_sizes else None,
        precision=args.precision,
        img_size=args.img_size,
        isolate=args.isolate,
        model_timeout_s=args.model_timeout_s,
        executor=args.executor,
        ray_address=args.ray_address,
        resume=args.resume is not None,
    )


def _harness_options(args, harnesses) -> dict[str, dict]:
    """Each harness's own options that were given, by harness (its defaults fill the rest)."""
    dests = args.harness_dests
    return {
        h: {d: getattr(args, d) for d in dests.get(h, ()) if hasattr(args, d)} for h in harnesses
    }


def _run_inputs(args, store):
    """(models, harness option, resumed run or None) from the options and ``--resume``."""
    resumed = None
    if args.resume is not None:
        resumed = store.open_run(None if args.resume == LATEST else args.resume)
    config = resumed.header.get("config", {}) if resumed else {}
    models = args.models or ",".join(config.get("models", []))
    if not models:
        raise ConfigError("No models given. Pass --models NAME[,NAME...] or --models chapter.")
    harness_text = args.harness or (",".join(config.get("harnesses", [])) or None)
    return models, harness_text, resumed


# metrics the run's summary shows (the *_inference ones: reparameterisable models' inference
# form, beside the training form)
SUMMARY_METRICS = ("params", "params_inference", "infer_gmacs", "infer_gmacs_inference",
                   "infer_macts", "depth", "top1")  # fmt: skip


def _summary_row(spec, records) -> dict:
    row = {"model": spec.name, "source": spec.source}
    errors = []
    for r in records:
        if r["status"] == "skipped":
            continue
        if r["status"] != "ok":
            errors.append(f"{r['harness']}: {r['error']}")
            continue
        m = r["metrics"]
        for key in SUMMARY_METRICS:
            if key in m:
                row[key] = f"{m[key]:,}" if key.startswith("params") else m[key]
        for mode in ("infer", "train") if r["harness"] == "throughput" else ():
            if f"{mode}_samples_per_sec" in m:
                speed = f"{m[f'{mode}_samples_per_sec']:.1f} @{m.get(f'{mode}_batch_size')}"
                key = f"{mode} img/s @batch"
                row[key] = f"{row[key]}, {speed}" if key in row else speed
    row["error"] = "; ".join(errors)
    return row


def cmd_run(args) -> int:
    from bench import harness
    from bench.dist import is_main_process
    from bench.executors import make_executor
    from bench.storage import ResultStore

    chatty = is_main_process()  # under torchrun, rank 0 alone talks
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a folder for the results store.")
    store = ResultStore(out)
    models, harness_text, resumed = _run_inputs(args, store)
    harnesses = harness.parse_harnesses(harness_text)
    run_config = _run_config(args)
    # started first, so that a Ray cluster's workers warm up while the models are resolved
    executor = make_executor(run_config)
    try:
        return _sweep(args, harnesses, models, resumed, store, run_config, executor, chatty)
    finally:
        executor.close()


def _sweep(args, harnesses, models, resumed, store, run_config, executor, chatty) -> int:
    from bench import harness
    from bench.progress import Progress
    from bench.registry import Registry
    from bench.runner import configure, run

    registry = Registry()
    for w in [*harness.warnings(), *registry.warnings] if chatty else ():
        print(f"warning: {w}", file=sys.stderr)
    exclude = [e.strip() for e in args.exclude.split(",") if e.strip()]
    specs = registry.resolve(models, exclude=exclude)
    configs = configure(harnesses, run_config, _harness_options(args, harnesses))
    summary: list[dict] = []
    progress: list[Progress] = []

    def on_plan(work):
        if chatty and resumed is not None:
            print(f"resuming run {resumed.header.get('run_id')}: {len(specs) - len(work)} of "
                  f"{len(specs)} model(s) already measured; measuring {len(work)}.",
                  file=sys.stderr, flush=True)  # fmt: skip
        if chatty:
            progress.append(Progress(len(work), bar=args.progress_bar))

    def on_model(spec, records):
        row = _summary_row(spec, records)
        summary.append(row)
        errors = row["error"].count("; ") + 1 if row["error"] else 0
        if progress:
            progress[0].update(spec.name, f"{errors} failed" if errors else "ok", bool(errors))

    try:
        doc = run(specs, harnesses, run_config, store, on_model=on_model, configs=configs,
                  resume=resumed, on_plan=on_plan, executor=executor)  # fmt: skip
    except KeyboardInterrupt as e:
        if chatty:
            how = f"stopped by {e}" if isinstance(e, Terminated) else "interrupted"
            print(f"\n{how}: {len(summary)} model(s) measured were saved.", file=sys.stderr)
        return 128 + e.signum if isinstance(e, Terminated) else EXIT_INTERRUPTED
    finally:
        for p in progress:
            p.close()
    failed = [r["model"] for r in summary if r["error"]]
    if chatty:
        _print_summary(summary, doc.path, failed)
    return EXIT_FAILED if failed else 0


def _print_summary(summary: list[dict], path: Path, failed: list[str]) -> None:
    cols = ["model", "source", "params", "params_inference", "infer_gmacs",
            "infer_gmacs_inference", "infer_macts", "depth", "infer img/s @batch",
            "train img/s @batch", "top1"]  # fmt: skip
    cols = [c for c in cols if c in ("model", "source") or any(c in r for r in summary)]
    if failed:
        cols.append("error")
    _print_table(summary, cols)
    print(f"\nresults: {path}\nreports: run 'python -m bench report' to regenerate them.")
    if failed:
        print(
            f"failed: {len(failed)} of {len(summary)} model(s): {', '.join(failed)}",
            file=sys.stderr,
        )


def cmd_report(args) -> int:
    from bench.report.generate import generate

    results = Path(args.results)
    if not results.is_dir():
        raise ConfigError(
            f"No results store at {results}/. Run 'python -m bench run --models ...' first, "
            "or pass --results DIR."
        )
    for path in generate(results, args.out):
        print(path)
    return 0


def cmd_compare(args) -> int:
    from bench.compare import compare, parse_thresholds

    thresholds = parse_thresholds(args.fail)
    metrics = [m for m in args.metrics.split(",") if m] if args.metrics else None
    result = compare(args.base, args.new, thresholds, results=args.results,
                     all_runs=args.all_runs, metrics=metrics)  # fmt: skip
    sys.stdout.write(result.render(args.format))
    for line in result.failures:
        print(f"regression: {line}", file=sys.stderr)
    return EXIT_FAILED if result.failures else 0


COMMANDS = {"list": cmd_list, "run": cmd_run, "report": cmd_report, "compare": cmd_compare}


@contextlib.contextmanager
def _stop_on_signals():
    """SIGTERM and SIGHUP (``timeout``, a closed terminal, a scheduler) stop a run as Ctrl-C
    does: the records measured are kept, the run is marked interrupted, workers are killed.
    The previous handlers are restored afterwards."""
    import signal

    def handler(signum, frame):
        raise Terminated(signum)

    before = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        try:
            before[sig] = signal.signal(sig, handler)
        except (ValueError, OSError):  # not the main thread, or no such signal here
            pass
    try:
        yield
    finally:
        for sig, old in before.items():
            signal.signal(sig, old)


# what every command needs, by import name (pyproject's dependencies; the optional extras
# are checked where they are used)
CORE_IMPORTS = ("torch", "torchvision", "timm", "pandas", "tabulate", "fvcore", "tqdm")


def missing_dependencies(names=CORE_IMPORTS) -> list[str]:
    import importlib.util

    return [n for n in names if importlib.util.find_spec(n) is None]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    missing = missing_dependencies()
    if missing:  # this Python is not the one cnn-bench was installed in
        print(
            f"error: this Python ({sys.executable}) lacks cnn-bench's dependencies "
            f"{', '.join(missing)}; install them with 'pip install -e .', or run the Python "
            "of the environment cnn-bench is installed in.",
            file=sys.stderr,
        )
        return EXIT_USAGE
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        with _stop_on_signals():
            return COMMANDS[args.command](args)
    except BenchError as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # `python -m bench list | head`
        return 0
