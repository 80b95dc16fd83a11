"""Command line: ``python -m bench {list,run,ab,report,compare,runs,export}``.

Bad input is one line on stderr and exit status 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path

from bench.cli.options import harness_options, run_config_of
from bench.cli.parser import EXIT_USAGE, LATEST, build_parser
from bench.errors import BenchError, ConfigError, Terminated

logger = logging.getLogger("bench")

EXIT_FAILED = 1  # `run`: a record failed; `compare`: a threshold was crossed
EXIT_INTERRUPTED = 130


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


def _resumed(args, store):
    """The run ``--resume`` completes (None without it)."""
    if args.resume is None:
        return None
    return store.open_run(None if args.resume == LATEST else args.resume)


def _run_inputs(args, resumed):
    """(models, harness option) from the options, else from the run ``--resume`` completes."""
    config = resumed.header.get("config", {}) if resumed else {}
    models = args.models or ",".join(config.get("models", []))
    if not models:
        raise ConfigError("No models given. Pass --models NAME[,NAME...] or --models chapter.")
    harness_text = args.harness or (",".join(config.get("harnesses", [])) or None)
    return models, harness_text


# metrics the run's summary shows (the *_inference ones: reparameterisable models' inference
# form, beside the training form)
SUMMARY_METRICS = ("params", "params_inference", "infer_gmacs", "infer_gmacs_inference",
                   "infer_macts", "depth", "top1")  # fmt: skip


# the column naming how each speed was measured (scenario and its headline, precision, runtime)
MEASURED_AS = "measured as"
NOT_MEASURED = "not measured"  # the skipped records' reasons


def _summary_row(spec, records) -> dict:
    from bench.report.best import short_config

    row = {"model": spec.name, "source": spec.source}
    errors, configs, skipped = [], [], []
    for r in records:
        if r["status"] == "skipped":  # asked for and not measured: the reason, not silence
            skipped.append(f"{r['harness']}: {str(r.get('error')).removeprefix('skipped: ')}")
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
        if r["harness"] == "throughput":
            configs.append(short_config(r))
    if configs:
        row[MEASURED_AS] = "; ".join(dict.fromkeys(configs))
    if skipped:
        row[NOT_MEASURED] = "; ".join(skipped)
    row["error"] = "; ".join(errors)
    return row


def cmd_run(args) -> int:
    from bench.dist import is_main_process

    chatty = is_main_process()  # under torchrun, rank 0 alone talks
    summary: list[dict] = []
    try:
        doc = sweep(args, summary, chatty)
    except KeyboardInterrupt as e:
        if chatty:
            how = f"stopped by {e}" if isinstance(e, Terminated) else "interrupted"
            print(f"\n{how}: {len(summary)} model(s) measured were saved.", file=sys.stderr)
        return 128 + e.signum if isinstance(e, Terminated) else EXIT_INTERRUPTED
    failed = [r["model"] for r in summary if r["error"]]
    if chatty:
        _print_summary(summary, doc.path, failed)
    return EXIT_FAILED if failed else 0


def sweep(args, summary: list[dict] | None = None, chatty: bool = True):
    """``run``'s work for its parsed options ``args``: the finished RunDocument. Each model's
    summary row is appended to ``summary`` as it completes; ``chatty``: warnings and progress
    on stderr. Ctrl-C leaves the run saved as interrupted and is raised again (``cmd_run``
    and ``bench.run`` share this)."""
    from bench import harness
    from bench.cli.resume import resumed_args
    from bench.executors import open_executor
    from bench.storage import ResultStore

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a folder for the results store.")
    store = ResultStore(out)
    resumed = _resumed(args, store)
    if resumed is not None:  # the options of the run it completes, under those given now
        args = resumed_args(args, resumed)
    models, harness_text = _run_inputs(args, resumed)
    harnesses = harness.parse_harnesses(harness_text)
    run_config = run_config_of(args)
    # opened first, so that a Ray cluster's workers warm up while the models are resolved;
    # this block owns it (the runner measures on it and leaves it open)
    with open_executor(run_config) as executor:
        return _sweep(args, harnesses, models, resumed, store, run_config, executor, chatty,
                      every=harness_text == "all",
                      summary=[] if summary is None else summary)  # fmt: skip


def _sweep(args, harnesses, models, resumed, store, run_config, executor, chatty, every,
           summary):  # fmt: skip
    from bench import harness
    from bench.progress import Progress
    from bench.registry import Registry
    from bench.runner import harness_configs, run

    registry = Registry()
    for w in [*harness.warnings(), *registry.warnings] if chatty else ():
        print(f"warning: {w}", file=sys.stderr)
    exclude = [e.strip() for e in args.exclude.split(",") if e.strip()]
    specs = registry.resolve(models, exclude=exclude)
    # --harness all: every harness that can run with the options given; the others are named
    left_out: dict[str, str] | None = {} if every else None
    configs = harness_configs(harnesses, run_config, harness_options(args, harnesses), left_out)
    harnesses = [h for h in harnesses if h in configs]
    for name, why in (left_out or {}).items() if chatty else ():
        print(f"warning: --harness all: '{name}' left out: {why}", file=sys.stderr)
    progress: list[Progress] = []

    def on_plan(work):
        if chatty and resumed is not None:
            print(f"resuming run {resumed.header.get('run_id')}: {len(specs) - len(work)} of "
                  f"{len(specs)} model(s) already measured; measuring {len(work)}.",
                  file=sys.stderr, flush=True)  # fmt: skip
        if chatty:
            progress.append(Progress(len(work), bar=args.progress))

    def on_model(spec, records):
        row = _summary_row(spec, records)
        summary.append(row)
        errors = row["error"].count("; ") + 1 if row["error"] else 0
        if progress:
            progress[0].update(spec.name, f"{errors} failed" if errors else "ok", bool(errors))

    try:
        return run(specs, harnesses, run_config, store, on_model=on_model, configs=configs,
                   resume=resumed, on_plan=on_plan, executor=executor,
                   repeats=args.repeats, argv=getattr(args, "argv", None))  # fmt: skip
    finally:
        for p in progress:
            p.close()


def _print_summary(summary: list[dict], path: Path, failed: list[str]) -> None:
    cols = ["model", "source", "params", "params_inference", "infer_gmacs",
            "infer_gmacs_inference", "infer_macts", "depth", "infer img/s @batch",
            "train img/s @batch", MEASURED_AS, "top1", NOT_MEASURED]  # fmt: skip
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
    from bench.compare import Options, compare, compare_runs, parse_thresholds

    thresholds = parse_thresholds(args.fail)
    metrics = [m for m in args.metrics.split(",") if m] if args.metrics else None
    options = Options(args.alpha, args.confidence, args.cross_machine)
    if len(args.sides) == 1 and not args.all_runs:
        raise ConfigError("compare needs BASE and NEW (or more runs), or --all STORE alone.")
    how = {"results": args.results, "all_runs": args.all_runs, "metrics": metrics,
           "options": options}  # fmt: skip
    if len(args.sides) == 2:
        result = compare(*args.sides, thresholds, **how)
    else:
        result = compare_runs(args.sides, thresholds, **how)
    sys.stdout.write(result.render(args.format))
    for line in result.failures:
        print(f"regression: {line}", file=sys.stderr)
    for line in result.unjudged:  # --fail names them, but their timing cannot be trusted
        print(f"untrusted, not gated (re-measure): {line}", file=sys.stderr)
    return EXIT_FAILED if result.failures else 0


def cmd_runs(args) -> int:
    from bench.runs import runs_table

    print(runs_table(Path(args.store), args.keyword))
    return 0


def cmd_ab(args) -> int:
    from bench.cli.ab import cmd_ab as ab

    return ab(args)


def cmd_export(args) -> int:
    from bench.report.export import export

    text, written = export(args.path, args.export_format, args.out, args.direction)
    if text is not None:
        sys.stdout.write(text)
    for path in written:
        print(path, file=sys.stderr)
    return 0


COMMANDS = {"list": cmd_list, "run": cmd_run, "ab": cmd_ab, "report": cmd_report,
            "compare": cmd_compare, "runs": cmd_runs, "export": cmd_export}  # fmt: skip


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
    args.argv = list(argv)  # as the run document records it (and --resume reads it back)
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
