"""The command line's grammar: ``python -m bench``'s subcommands and their options (argparse),
with a one-line error that points at ``--help``. Harnesses add their own ``run`` options."""

from __future__ import annotations

import argparse

from bench.errors import ConfigError

EXIT_USAGE = 2
LATEST = "latest"  # --resume without a run id
# run-wide options a harness may declare too; its declaration then gets the run's value
SHARED_RUN_OPTIONS = {"--no-progress": "progress"}
AB_HARNESS = "throughput"  # the harness ``ab`` measures


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error that points at --help; a ``raising`` parser raises
    that line as a ConfigError instead of exiting (the Python API)."""

    raise_errors = False

    def error(self, message: str):
        line = f"{message}. See '{self.prog} --help'."
        if self.raise_errors:
            raise ConfigError(line)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {line}\n")


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parser of each subcommand of ``parser``, by name."""
    for action in parser._actions:
        if isinstance(action.choices, dict):  # the subcommands' action
            return dict(action.choices)
    return {}


def raising(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``parser``, with it and its subcommands raising a ConfigError of the one line they
    would print, instead of exiting with status 2."""
    for p in [parser, *subcommands(parser).values()]:
        p.raise_errors = True
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m bench",
        description="cnn-bench: measure the chapter's CNN architectures (and any timm, "
        "torchvision or plugin model): parameters, MACs, depth and more.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(
        dest="command", metavar="{list,run,ab,report,compare,runs,export}", parser_class=_Parser
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
    _add_sweep_arguments(p.add_argument_group("run"))
    from bench.harness import add_harness_arguments

    p.set_defaults(harness_dests=add_harness_arguments(p, SHARED_RUN_OPTIONS))

    p = sub.add_parser("report", help="regenerate the reports from the results",
                       description="Regenerate reports/ (markdown tables, results.csv) from the "
                       "results store. The same results always give the same files.")  # fmt: skip
    p.add_argument("--results", default="results", help="results store to read (default: results/)")
    p.add_argument(
        "--out", default="reports", help="folder to write reports to (default: reports/)"
    )
    _add_compare_parser(sub)
    _add_ab_parser(sub)
    p = sub.add_parser("runs", help="list the runs saved in a results store",
                       description="List the runs of a results store: id, date, machine, "
                       "models, harnesses, status; oldest first.")  # fmt: skip
    p.add_argument("store", nargs="?", default="results", help="the store (default: results/)")
    p.add_argument("-k", dest="keyword", default=None, metavar="PATTERN",
                   help="only runs with a model or harness matching PATTERN (a wildcard or a "
                   "part of the name)")  # fmt: skip
    _add_export_parser(sub)
    return parser


def _add_export_parser(sub) -> None:
    from bench.report.export import DIRECTIONS, FORMATS

    p = sub.add_parser("export", help="write stored results in another tool's format",
                       description="Write the latest results of a run document or a whole "
                       "store in another tool's format: github-action-benchmark's custom JSON, "
                       "timm's benchmark CSV, or the tidy table as JSON lines.")  # fmt: skip
    p.add_argument("path", metavar="PATH", help="a run document (.json) or a results store")
    p.add_argument("--format", required=True, choices=FORMATS, dest="export_format")
    p.add_argument("--out", default=None, metavar="FILE",
                   help="file to write (default: stdout); for a timm-csv of several tables "
                   "(device, precision, layout, runtime), the stem of FILE-<table>.csv")  # fmt: skip
    p.add_argument("--direction", choices=DIRECTIONS, default="bigger",
                   help="github-action-benchmark: 'bigger' writes samples/s and top-1 %% "
                   "(tool: customBiggerIsBetter), 'smaller' step times in ms "
                   "(customSmallerIsBetter) (default: bigger)")  # fmt: skip


def _add_run_arguments(g) -> None:
    """``run``'s own options: what to measure, where, and how (every harness reads these)."""
    from bench.harness.argtypes import device, int_list, positive_float, positive_int
    from bench.harness.base import PRECISIONS, ExecutionConfig, RunConfig

    d, e = RunConfig(), ExecutionConfig()
    g.add_argument("--models", default=None,
                   help="comma-separated names: registered ('resnet50'), any timm model, "
                   "'torchvision:NAME', wildcards ('convnext*'), a source's catalogue "
                   "('timm:*', 'timm:resnet*', 'torchvision:*'), or 'chapter' for the chapter's "
                   "table plus its own models (required unless --resume)")  # fmt: skip
    g.add_argument("--exclude", default="", metavar="PATTERN[,PATTERN...]",
                   help="comma-separated wildcards of model names to leave out")  # fmt: skip
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
                   help="fp32, or bf16/fp16 autocast, or int8 (throughput only: INT8 speed "
                   "through --runtime onnxruntime|openvino, calibrated on synthetic input, "
                   f"accuracy not measured) (default: {d.precision})")  # fmt: skip
    g.add_argument("--no-isolate", dest="isolate", action="store_false", default=e.isolate,
                   help="measure in this process instead of one subprocess per model")  # fmt: skip
    g.add_argument("--model-timeout", dest="model_timeout_s", default=e.model_timeout_s,
                   type=lambda t: positive_float(t, "a positive number of seconds"), metavar="S",
                   help="an isolated model that takes longer than S seconds becomes an error "
                   f"row (default: {e.model_timeout_s:g})")  # fmt: skip
    g.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bars, even on a terminal: plain '[i/n] model: ok' lines "
                   "for the sweep, and no per-epoch bar in the harnesses that draw one "
                   "(fine-tune)")  # fmt: skip


def _add_sweep_arguments(g) -> None:
    """``run``'s options of which harnesses and how the sweep is carried out (not ``ab``'s:
    it measures the throughput harness, here, in its own rounds)."""
    from bench.harness import DEFAULT_HARNESSES
    from bench.harness.argtypes import positive_int
    from bench.harness.base import EXECUTORS, ExecutionConfig

    e = ExecutionConfig()
    g.add_argument("--harness", default=None,
                   help="comma-separated harnesses ('python -m bench list --harnesses') or "
                   f"'all' (default: {','.join(DEFAULT_HARNESSES)})")  # fmt: skip
    g.add_argument("--executor", choices=EXECUTORS, default=e.executor,
                   help="local: measure here; ray: one Ray task per (model, harness group), "
                   "on --ray-address or a Ray started here (needs cnn-bench[ray]) "
                   f"(default: {e.executor})")  # fmt: skip
    g.add_argument("--ray-address", dest="ray_address", default=None, metavar="ADDRESS",
                   help="join this Ray cluster ('auto', 'ray://host:10001'); default: start "
                   "a Ray here with this machine's resources")  # fmt: skip
    g.add_argument("--repeats", type=positive_int, default=1, metavar="N",
                   help="measure every (model, configuration) of the throughput harness N "
                   "times, in rounds over all models, forward then backward...; samples/s is "
                   "the median over the rounds, and every round's is recorded (default: 1)")  # fmt: skip
    g.add_argument("--resume", nargs="?", const=LATEST, default=None, metavar="RUN_ID",
                   help="complete a run (the latest in --out, or RUN_ID): skip each (model, "
                   "harness) it measured successfully, measure the rest into the same run, "
                   "and continue an interrupted fine-tune from its checkpoint")  # fmt: skip


def _add_compare_parser(sub) -> None:
    p = sub.add_parser("compare", help="compare runs and gate regressions",
                       description="Compare BASE with NEW (and more runs: one column each): each "
                       "a run id (looked up in --results), a results file, a store folder (its "
                       "latest complete run; --all for every run) or a timm results CSV; "
                       "'--all STORE' alone compares every run of STORE. Exit status 1 when a "
                       "--fail threshold is crossed, 2 for bad input or speeds from different "
                       "machines.")  # fmt: skip
    p.add_argument("sides", nargs="+", metavar="RUN",
                   help="BASE NEW [MORE...]: run ids, results files, stores or timm CSVs; the "
                   "first is the reference")  # fmt: skip
    p.add_argument(
        "--results",
        default="results",
        help="store in which run ids are looked up (default: results/)",
    )
    p.add_argument("--all", dest="all_runs", action="store_true",
                   help="for a store folder, every run (the latest record of each configuration)")  # fmt: skip
    p.add_argument("--cross-machine", action="store_true",
                   help="compare speeds measured on different machines (each row says so)")  # fmt: skip
    _add_judging_arguments(p)


def _add_judging_arguments(p) -> None:
    """How a comparison is judged and written (``compare`` and ``ab``)."""
    from bench.stats import ALPHA, CONFIDENCE

    p.add_argument("--fail", action="append", default=[], metavar="METRIC:CHANGE",
                   help="fail on a change this large, repeatable: infer_samples_per_sec:-5%%, "
                   "top1:-0.5 (points), infer_gmacs:1%% (either way), params:0 (any change)")  # fmt: skip
    p.add_argument("--metrics", default=None,
                   help="comma-separated metrics to show, or 'all' (default: the headline ones "
                   "and any named by --fail)")  # fmt: skip
    p.add_argument("--format", choices=("markdown", "csv", "json"), default="markdown")
    p.add_argument("--alpha", type=float, default=ALPHA,
                   help="significance level of the tests on timing samples, after Holm's "
                   f"correction over the table's tests (default: {ALPHA:g})")  # fmt: skip
    p.add_argument("--confidence", type=float, default=CONFIDENCE,
                   help=f"level of the interval of a timing change (default: {CONFIDENCE:g})")  # fmt: skip


def _add_ab_parser(sub) -> None:
    from bench.harness import add_harness_arguments
    from bench.harness.argtypes import positive_int

    p = sub.add_parser("ab", help="measure two option sets alternately in one run, judge B "
                       "against A", description="Measure the throughput harness with option set "
                       "A and option set B alternately in one run (each model A B, then B A, ...: "
                       "A B B A A B B A), write both into one run document, and judge B against "
                       "A as 'compare' does. Exit status 1 when a --fail threshold is crossed, 2 "
                       "for bad input.")  # fmt: skip
    g = p.add_argument_group("A/B")
    g.add_argument("--a", dest="arm_a", required=True, metavar="OPTIONS",
                   help="A's options (the base), quoted: throughput options, --batch-size, "
                   "--precision, --img-size (\"--threads 2\"; one option without a value as "
                   "--a=--channels-last; \"\" for the defaults)")  # fmt: skip
    g.add_argument("--b", dest="arm_b", required=True, metavar="OPTIONS",
                   help="B's options, judged against A's")  # fmt: skip
    g.add_argument("--rounds", type=positive_int, default=4, metavar="N",
                   help="rounds of each arm: each model A B, then B A, ... (A B B A A B B A for "
                   "4); an even N balances the order (default: 4)")  # fmt: skip
    _add_run_arguments(p.add_argument_group("run (both arms)"))
    dests = add_harness_arguments(p, SHARED_RUN_OPTIONS, only=(AB_HARNESS,))
    p.set_defaults(harness=AB_HARNESS, repeats=1, resume=None, executor="local",
                   ray_address=None, harness_dests=dests)  # fmt: skip
    _add_judging_arguments(p.add_argument_group("judging (as compare)"))


class _ArmParser(_Parser):
    """One arm's options (``ab --a "..."``): any of ``run``'s, an error a ``ConfigError``."""

    def error(self, message: str):
        raise ConfigError(f"{self.prog}: {message}.")


def arm_parser(label: str) -> tuple[argparse.ArgumentParser, dict[str, list[str]]]:
    """The grammar of arm ``label``'s options (all of ``run``'s, so that an option of the
    whole run is named as one), and the throughput harness's option names (``dest``)."""
    from bench.harness import add_harness_arguments

    p = _ArmParser(prog=f"--{label.lower()}", add_help=False)
    _add_run_arguments(p)
    _add_sweep_arguments(p)
    return p, add_harness_arguments(p, SHARED_RUN_OPTIONS, only=(AB_HARNESS,))
