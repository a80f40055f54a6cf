"""The handlers of the data scientist's ``cds`` commands (simulate, train, evaluate, score,
recalibrate, models, monitor, columns). Each imports the heavy training modules only when it
runs, so ``cds assess`` stays light; :mod:`training.cli` builds the parser, :func:`cds.cli.run`
maps errors to exit statuses.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from cds.errors import UserError


class Progress:
    """Progress lines of a long command on stderr, never stdout (stdout may be the data):
    ``[  12.3 s] step``, the elapsed time since the command started, then what it is doing
    (with "n of N" where it is a loop). Under ``--quiet`` only warnings are said."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.started = time.monotonic()

    def __call__(self, message: str) -> None:
        if self.quiet and not message.lstrip().lower().startswith("warning"):
            return
        print(f"[{time.monotonic() - self.started:7.1f} s] {message}", file=sys.stderr, flush=True)


def _progress(args: argparse.Namespace) -> Progress:
    """The command's one progress reporter (its clock starts at the first call: in
    :func:`training.cli.main`, before the heavy imports)."""
    if not isinstance(getattr(args, "progress_lines", None), Progress):
        args.progress_lines = Progress(quiet=getattr(args, "quiet", False))
    progress: Progress = args.progress_lines
    return progress


def _simulate(args: argparse.Namespace) -> int:
    from training.simulate import simulate

    say = _progress(args)
    say(f"simulating {args.n} people (seed {args.seed})")
    frame = simulate(args.n, args.seed, control_fraction=args.controls)
    say(f"writing {args.out}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(args.out, index=False)
    print(f"wrote {len(frame)} simulated people to {args.out}", file=sys.stderr)
    return 0


def _train(args: argparse.Namespace) -> int:
    from training.pipeline import train
    from training.tune import Budget

    tune = Budget(trials=args.tune_trials, seconds=args.tune_seconds) if args.tune else None
    out = train(args.data, args.out, version=args.version, eval_data=args.eval_data,
                seed=args.seed, quarantine=args.quarantine, progress=_progress(args),
                num_threads=args.threads, tune=tune, engine=args.engine,
                scheduler=args.scheduler, anticipated_r2=args.anticipated_r2,
                accept_small_sample=args.accept_small_sample, columns=args.columns)
    print(f"wrote model artefact {out}", file=sys.stderr)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from training.report import evaluate

    against = None if args.against.lower() == "none" else args.against
    result = evaluate(args.model, args.data, args.out, against=against, reps=args.reps,
                      seed=args.seed, root=Path(args.root) if args.root else None,
                      progress=_progress(args), columns=args.columns)
    figures = result["figures"]
    for name, f in figures.items():
        o = f["overall"]
        what = result["versions"].get(name, "(the simulator's own probabilities)")
        print(f"{name} {what}: AUROC {o['auroc']:.3f} "
              f"({o['auroc_ci95'][0]:.3f}-{o['auroc_ci95'][1]:.3f}), calibration intercept "
              f"{f['calibration']['intercept']:+.3f}, slope {f['calibration']['slope']:.3f}")
    names = list(figures)
    print("subgroup | n | " + " | ".join(f"{n} AUROC (95% CI)" for n in names))
    for dim in ("care_setting", "complaint"):
        for group, base in figures[names[0]]["subgroups"].get(dim, {}).items():
            cells = []
            for n in names:
                s = figures[n]["subgroups"][dim][group]
                cells.append("too few" if s.get("too_small") else
                             f"{s['auroc']:.3f} ({s['auroc_ci95'][0]:.3f}-{s['auroc_ci95'][1]:.3f})")
            print(f"{dim}: {group} | {base['n']} | " + " | ".join(cells))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _score(args: argparse.Namespace) -> int:
    from training.score import score

    result = score(args.model, args.data, args.out, engine=args.engine, scheduler=args.scheduler,
                   root=Path(args.root) if args.root else None, progress=_progress(args),
                   columns=args.columns)
    print(f"scored {result['rows']} rows with {result['model_version']} ({result['engine']}) in "
          f"{result['seconds']:.1f} s: {result['rows'] / max(result['seconds'], 1e-9):,.0f} rows/s; "
          f"wrote {args.out}", file=sys.stderr)
    return 0


def _recalibrate(args: argparse.Namespace) -> int:
    from training.recalibrate import recalibrate

    out = recalibrate(args.model, args.data, version=args.version, method=args.method,
                      root=Path(args.root) if args.root else None, quarantine=args.quarantine,
                      progress=_progress(args), columns=args.columns)
    print(out.name)
    print(f"wrote {out}; promote it through the gate with labelled data, best held out (outcomes "
          f"not used for this recalibration):\n  cds models promote {out.name} --alias "
          f"production --data HELD_OUT_DATA\n(with --data {args.data} the gate compares on the "
          "recalibration data itself, and says so: the candidate's figures are then apparent)",
          file=sys.stderr)
    return 0


def _models(args: argparse.Namespace) -> int:
    from cds.model import models_dir
    from training.registry import history_lines, rollback, unset_alias

    root = Path(args.root) if args.root else models_dir()
    args.alias_given = args.alias is not None
    args.alias = args.alias or "production"
    if args.action == "list":
        return _models_list(root, args.json)
    if args.action == "history":
        for line in history_lines(root, args.alias if args.alias_given else None):
            print(line)
        return 0
    if args.action == "unset":
        if not args.alias_given:
            raise UserError("cds models unset: give the --alias to remove (e.g. --alias shadow)")
        last = unset_alias(root, args.alias, reason=args.reason)["history"][-1]
        print(f"{args.alias} removed (was {last['previous']}; recorded: cds models history)",
              file=sys.stderr)
        return 0
    if args.action == "rollback":
        last = rollback(root, args.alias, reason=args.reason)["history"][-1]
        print(f"{args.alias} -> {last['version']} (rolled back from {last['previous']}; "
              "recorded: cds models history)", file=sys.stderr)
        return 0
    return _models_promote(root, args)


def _models_list(root: Path, as_json: bool) -> int:
    """``cds models list``: each version, its aliases and figures, the data they were measured on."""
    from training.registry import versions

    rows = versions(root)
    if as_json:
        print(json.dumps(rows, indent=2))
    data_keys: dict[str, str] = {}
    for v in [] if as_json else rows:
        key = data_keys.setdefault(v["measured_on"], f"[{chr(ord('a') + len(data_keys))}]")
        tags = f"  [{', '.join(v['aliases'])}]" if v["aliases"] else ""
        auroc = f"  AUROC {v['auroc']:.3f} on {key}" if v["auroc"] is not None else ""
        parent = f"  (recalibrated from {v['parent']})" if v["parent"] else ""
        print(f"{v['version']}{tags}{auroc}{parent}  {v['created']}  {v['trained_on']}")
    if data_keys:
        print("\nfigures measured on:")
        for text, key in data_keys.items():
            print(f"  {key} {text}")
        if len(data_keys) > 1:
            print("figures on different data are not comparable; compare two versions on the "
                  "same data with: cds evaluate --model A --against B --data FILE")
    return 0


def _models_promote(root: Path, args: argparse.Namespace) -> int:
    """``cds models promote``: through the gate (unless ``--force``), and what the gate said."""
    from training.gate import promote

    if not args.version:
        raise UserError("cds models promote: give the VERSION to promote (cds models list)")
    given = {"auroc": args.margin_auroc, "calibration_intercept": args.margin_intercept,
             "calibration_slope": args.margin_slope, "subgroup_auroc": args.margin_subgroup_auroc,
             "subgroup_calibration_pp": args.margin_subgroup_pp,
             "min_subgroup_n": args.min_subgroup_n}
    event = promote(root, args.version, alias=args.alias, data=args.data, force=args.force,
                    report=args.report, reason=args.reason, reps=args.reps,
                    progress=_progress(args),
                    overrides={k: v for k, v in given.items() if v is not None},
                    columns=args.columns)
    gate = event.get("gate")
    plan = event.get("plan")
    if gate:
        print("gate " + ("passed" if gate["passed"] else "FAILED, promoted with --force "
                         "(recorded)") + ":\n  " + "\n  ".join(gate["checks"]), file=sys.stderr)
        print(f"  gate data: {event.get('gate_data')}", file=sys.stderr)
        if event.get("gate_data_note"):
            print(f"  note: {event['gate_data_note']}", file=sys.stderr)
        print("  rule: change control plan " + (f"{plan['version']} ({plan['path']})"
                                                 if isinstance(plan, dict) else str(plan))
              + (f"; deviations recorded: {event['deviations']}" if event.get("deviations")
                 else ""), file=sys.stderr)
        print(f"  report: {event.get('report')}", file=sys.stderr)
    elif event.get("forced"):
        print("promoted with --force, without the gate (recorded)", file=sys.stderr)
    else:
        print("not gated (the first version of this alias, or an alias other than production)",
              file=sys.stderr)
    print(f"{args.alias} -> {args.version}", file=sys.stderr)
    return 0


def _monitor(args: argparse.Namespace) -> int:
    from training.monitor import lines, monitor, render

    result = monitor(args.data, model=args.model, root=Path(args.root) if args.root else None,
                     reference=args.reference, columns=args.columns, progress=_progress(args))
    for line in lines(result):
        print(line)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(render(result), encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2), encoding="utf-8")
    alarms = any(m["psi_alarms"] or m["calibration_alarm"] for m in result["months"])
    return 3 if alarms and args.fail_on_alarm else 0


def _columns(args: argparse.Namespace) -> int:
    from training.columns import describe, known_columns, suggest, write_mapping
    from training.sources import read_source
    from training.tidy import absent_findings

    _progress(args)(f"reading {args.file}")
    source = read_source(args.file)
    frame = source.frame
    suggestions = suggest(frame)
    known = {s.source for s in suggestions}
    contract = known_columns()
    unmatched = [str(c) for c in frame.columns if str(c) not in contract and str(c) not in known]
    if args.json:
        print(json.dumps(describe(suggestions), indent=2))
    else:
        print(f"{source.description}: {len(frame.columns)} columns, "
              f"{sum(str(c) in contract for c in frame.columns)} already contract names")
        for s in suggestions:
            print(f"  {s.source!r} -> {s.target}  ({s.why})")
        for c in unmatched:
            print(f"  {c!r}: no suggestion (ignored unless mapped)")
        present = {str(c) for c in frame.columns} | {s.target for s in suggestions}
        quiet, loud = absent_findings(present)
        for line in loud + quiet:
            print(f"  {line}")
    if args.out:
        write_mapping(suggestions, args.out, unmatched=unmatched)
        print(f"wrote {args.out}: review it, then pass --columns {args.out}", file=sys.stderr)
    return 0


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"at least 1, not {value}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a number between 0 and 1, not {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"between 0 and 1, not {value:g}")
    return value
