"""``python -m bench ab``: the two option sets read and checked, measured alternately in one
run (``bench.ab``), and B judged against A as ``compare`` judges (its output, its exit status).

An arm's options are parsed with ``run``'s grammar over the options given outside the arms, so
an arm changes only what it names. An arm may name what changes the measurement (the
throughput harness's options, ``--batch-size``, ``--precision``, ``--img-size``); what the run
as a whole decides (``--models``, ``--out``, ``--device``, ...) is refused, as are two arms
that measure the same."""

from __future__ import annotations

import argparse
import copy
import shlex
import sys
from pathlib import Path

from bench.cli.options import harness_options, run_config_of
from bench.cli.parser import AB_HARNESS, arm_parser
from bench.errors import ConfigError, Terminated

# the run-wide options an arm may change: they change what is measured, not where or which
ARM_RUN_OPTIONS = ("batch_sizes", "precision", "img_size")
_UNSET = object()
EXIT_INTERRUPTED = 130


def _given(parser: argparse.ArgumentParser, tokens: list[str]) -> dict:
    """The options ``tokens`` give, by ``dest`` (each with its parsed value)."""
    dests = {a.dest for a in parser._actions if a.dest != argparse.SUPPRESS}
    probe = argparse.Namespace(**dict.fromkeys(dests, _UNSET))
    parser.parse_args(tokens, namespace=probe)
    return {d: v for d, v in vars(probe).items() if v is not _UNSET}


def _flag(parser: argparse.ArgumentParser, dest: str) -> str:
    return next(a.option_strings[0] for a in parser._actions if a.dest == dest)


def arm_args(args: argparse.Namespace, label: str, text: str) -> argparse.Namespace:
    """The options of arm ``label``: those given outside the arms, with ``text``'s over them."""
    try:
        tokens = shlex.split(text)
    except ValueError as e:
        raise ConfigError(
            f"--{label.lower()} {text!r}: {e}; quote the options as a shell would."
        ) from e
    parser, dests = arm_parser(label)
    given = _given(parser, tokens)
    allowed = {*dests.get(AB_HARNESS, ()), *ARM_RUN_OPTIONS} - {"progress"}
    for dest in given:
        if dest not in allowed:
            raise ConfigError(
                f"--{label.lower()}: {_flag(parser, dest)} is an option of the whole run, not "
                "of one arm; give it outside --a and --b (an arm takes the throughput options "
                "and --batch-size, --precision, --img-size)."
            )
    ns = copy.copy(args)
    for dest, value in given.items():
        setattr(ns, dest, value)
    for dest, flag in (("optimize", "--optimize"), ("batch_search", "--batch-search")):
        if getattr(ns, dest, False):
            raise ConfigError(
                f"--{label.lower()} with {flag}: ab measures fixed configurations in rounds, "
                f"and {flag} would choose one per model and round; choose with 'run {flag}', "
                "then give the choice to an arm."
            )
    ns.arm_options = tuple(tokens)
    return ns


def _measured(ns: argparse.Namespace) -> dict:
    return {**run_config_of(ns).as_dict(), **harness_options(ns, [AB_HARNESS])[AB_HARNESS]}


def check_arms(a: argparse.Namespace, b: argparse.Namespace) -> None:
    """Two arms that would measure the same are bad input."""
    if _measured(a) == _measured(b):
        shown = [shlex.join(ns.arm_options) or "(defaults)" for ns in (a, b)]
        raise ConfigError(
            f"--a {shown[0]} and --b {shown[1]} measure the same; give option sets that "
            'differ, such as --a "--threads 2" --b "--threads 1".'
        )


def _arms(spaces: list[argparse.Namespace]) -> list:
    """Both arms configured and prepared (each its own peak: its threads, its precision)."""
    from bench.ab import Arm
    from bench.runner import harness_configs

    arms = []
    for label, ns in zip(("A", "B"), spaces, strict=True):
        run = run_config_of(ns)
        config = harness_configs([AB_HARNESS], run, harness_options(ns, [AB_HARNESS]))
        arms.append(Arm(label, ns.arm_options, run, config[AB_HARNESS]))
    return arms


def cmd_ab(args: argparse.Namespace) -> int:
    from bench.ab import judge_ab, measure_ab
    from bench.compare import Options, parse_thresholds
    from bench.executors import open_executor
    from bench.registry import Registry
    from bench.storage import ResultStore

    thresholds = parse_thresholds(args.fail)
    metrics = [m for m in args.metrics.split(",") if m] if args.metrics else None
    options = Options(args.alpha, args.confidence)
    if not args.models:
        raise ConfigError("No models given. Pass --models NAME[,NAME...].")
    if args.rounds < 2:
        raise ConfigError(
            f"--rounds {args.rounds}: ab needs 2 or more (A B, then B A), so that neither arm "
            "always runs first and speeds are judged on the rounds' spread; give --rounds 4."
        )
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a folder for the results store.")
    arms_ns = [arm_args(args, x, t) for x, t in (("A", args.arm_a), ("B", args.arm_b))]
    check_arms(*arms_ns)  # before any model is resolved or peak measured
    exclude = [e.strip() for e in args.exclude.split(",") if e.strip()]
    specs = Registry().resolve(args.models, exclude=exclude)
    arms = _arms(arms_ns)
    try:
        with open_executor(arms[0].run) as executor:
            doc = measure_ab(specs, arms, args.rounds, ResultStore(out), executor,
                             on_measured=_progress if args.progress else None)  # fmt: skip
    except KeyboardInterrupt as e:
        how = f"stopped by {e}" if isinstance(e, Terminated) else "interrupted"
        print(f"\n{how}: the rounds measured were saved in {out}/, not judged.", file=sys.stderr)
        return 128 + e.signum if isinstance(e, Terminated) else EXIT_INTERRUPTED
    result = judge_ab(doc.path, thresholds, metrics, options)
    sys.stdout.write(result.render(args.format))
    print(f"\nresults: {doc.path}", file=sys.stderr)
    for line in result.failures:
        print(f"regression: {line}", file=sys.stderr)
    for line in result.unjudged:
        print(f"untrusted, not gated (re-measure): {line}", file=sys.stderr)
    return 1 if result.failures else 0


def _progress(i: int, n: int, model: str, label: str, records: list[dict]) -> None:
    failed = [r for r in records if r.get("status") == "error"]
    state = f"failed: {failed[0].get('error')}" if failed else "ok"
    print(f"[{i}/{n}] {model} {label}: {state}", file=sys.stderr, flush=True)
