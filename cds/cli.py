"""The ``cds`` command line. Training commands import the heavy libraries only when run."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .errors import CdsError, InvalidRecord

EXAMPLES = {
    "assess": "cds assess --input examples/runner_pfp_hip_driven.json --explain",
    "simulate": "cds simulate --n 200000 --seed 1 --out data/train.parquet",
    "train": "cds train --data data/train.parquet --eval-data data/eval.parquet "
             "--out models/gmed-driver/0.2.0",
    "models": "cds models promote 0.2.0 --alias production --data data/eval.parquet",
    "score": "cds score --model production --data data/batch/ --out scored/ --engine dask",
    "recalibrate": "cds recalibrate --model production --data data/local_outcomes.csv",
    "evaluate": "cds evaluate --model candidate --data data/local_outcomes.csv --out report.html",
}


def _explain_text(result: dict[str, Any]) -> str:
    """An Assessment in words. A refer result says only what to do: it has no estimate."""
    lines = [f"{result['model']['id']} {result['model']['version']} "
             f"(trained on: {result['model']['trained_on']})"]
    if result["action"] == "refer":
        lines.append(f"RED FLAG - {result['referral']}")
    lines += [f"Warning: {w['message']}" for w in result["warnings"]]
    for r in result["results"]:
        lines.append(f"\n{r['complaint_label']}: {r['probability']:.0%} ({r['band']}) that hip "
                     "abductor weakness drives it")
        lines.append(f"  Starting point for {r['complaint_label'].lower()}: "
                     f"{r['starting_probability']:.0%}")
        shown = [*r["factors"][:6], *([r["not_recorded"]] if r["not_recorded"] else [])]
        lines += [f"  {'+' if f['contribution'] > 0 else '-'} {f['text']} ({f['contribution']:+.2f})"
                  for f in shown]
        if r["missing"]:
            lines.append("  Missing: " + ", ".join(m["label"] for m in r["missing"]))
        if r["next_best_assessment"]:
            lines.append("  " + r["next_best_assessment"]["text"])
    lines.append("\n" + result["disclaimer"])
    return "\n".join(lines)


def _assess(args: argparse.Namespace) -> int:
    from .assess import assess
    from .model import load_model

    record = json.loads(Path(args.input).read_text())
    result = assess(record, model=load_model(args.model)).to_dict()
    print(_explain_text(result) if args.explain else json.dumps(result, indent=2))
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from training.simulate import simulate

    frame = simulate(args.n, args.seed, control_fraction=args.controls)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(args.out, index=False)
    print(f"wrote {len(frame)} simulated people to {args.out}", file=sys.stderr)
    return 0


def _train(args: argparse.Namespace) -> int:
    from training.pipeline import train
    from training.tune import Budget

    tune = Budget(trials=args.tune_trials, seconds=args.tune_seconds) if args.tune else None
    out = train(args.data, args.out, version=args.version, eval_data=args.eval_data,
                seed=args.seed, quarantine=args.quarantine, progress=_progress,
                num_threads=args.threads, tune=tune, engine=args.engine,
                scheduler=args.scheduler)
    print(f"wrote model artefact {out}", file=sys.stderr)
    return 0


def _progress(message: str) -> None:
    """Long steps say what they are doing, on stderr (stdout stays for results)."""
    print(message, file=sys.stderr, flush=True)


def _evaluate(args: argparse.Namespace) -> int:
    from training.report import evaluate

    against = None if args.against.lower() == "none" else args.against
    result = evaluate(args.model, args.data, args.out, against=against, reps=args.reps,
                      seed=args.seed, root=Path(args.root) if args.root else None,
                      progress=_progress)
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
                   root=Path(args.root) if args.root else None, progress=_progress)
    print(f"scored {result['rows']} rows with {result['model_version']} ({result['engine']}) in "
          f"{result['seconds']:.1f} s: {result['rows'] / max(result['seconds'], 1e-9):,.0f} rows/s; "
          f"wrote {args.out}", file=sys.stderr)
    return 0


def _recalibrate(args: argparse.Namespace) -> int:
    from training.recalibrate import recalibrate

    out = recalibrate(args.model, args.data, version=args.version, method=args.method,
                      root=Path(args.root) if args.root else None, quarantine=args.quarantine,
                      progress=_progress)
    print(out.name)
    print(f"wrote {out}; promote it with: cds models promote {out.name} --alias production",
          file=sys.stderr)
    return 0


def _models(args: argparse.Namespace) -> int:
    from training.gate import Margins, promote
    from training.registry import rollback, versions

    from .model import models_dir

    root = Path(args.root) if args.root else models_dir()
    if args.action == "list":
        rows = versions(root)
        if args.json:
            print(json.dumps(rows, indent=2))
        for v in [] if args.json else rows:
            tags = f"  [{', '.join(v['aliases'])}]" if v["aliases"] else ""
            auroc = f"  AUROC {v['auroc']:.3f}" if v["auroc"] is not None else ""
            parent = f"  (recalibrated from {v['parent']})" if v["parent"] else ""
            print(f"{v['version']}{tags}{auroc}{parent}  {v['created']}  {v['trained_on']}")
        return 0
    if args.action == "rollback":
        last = rollback(root, args.alias, reason=args.reason)["history"][-1]
        print(f"{args.alias} -> {last['version']} (rolled back from {last['previous']})",
              file=sys.stderr)
        return 0
    if not args.version:
        raise SystemExit("cds models promote: give a VERSION")
    margins = Margins(auroc=args.margin_auroc, calibration_intercept=args.margin_intercept,
                      calibration_slope=args.margin_slope, subgroup_auroc=args.margin_subgroup_auroc,
                      subgroup_calibration_pp=args.margin_subgroup_pp,
                      min_subgroup_n=args.min_subgroup_n)
    event = promote(root, args.version, alias=args.alias, data=args.data, force=args.force,
                    margins=margins, report=args.report, reason=args.reason, reps=args.reps,
                    progress=_progress)
    gate = event.get("gate")
    if gate and not gate["passed"]:
        print("gate FAILED, promoted with --force (recorded):\n  " + "\n  ".join(gate["failures"]),
              file=sys.stderr)
    elif event.get("forced") and not gate:
        print("promoted with --force, without the gate (recorded)", file=sys.stderr)
    elif gate:
        print("gate passed", file=sys.stderr)
    print(f"{args.alias} -> {args.version}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from training.gate import Margins  # light: dataclasses and the registry only

    parser = argparse.ArgumentParser(prog="cds", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, description=help_text,
                              epilog=f"example: {EXAMPLES[name]}")

    p = add("assess", "Assess one patient record (JSON) and print the Assessment.")
    p.add_argument("--input", required=True, help="patient record JSON file")
    p.add_argument("--model", default="production", help="alias, version or directory")
    p.add_argument("--explain", action="store_true", help="print a readable explanation")
    p.set_defaults(run=_assess)

    p = add("simulate", "Simulate a cohort from the structural causal model (Parquet).")
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--controls", type=float, default=0.0, help="fraction of pain-free controls")
    p.add_argument("--out", required=True)
    p.set_defaults(run=_simulate)

    p = add("train", "Train, calibrate, evaluate and write a sealed model artefact.")
    p.add_argument("--data", required=True,
                   help="training data: .csv, .parquet (file or directory), FHIR Bulk NDJSON "
                        "(directory or .ndjson) or the service's store (SQLAlchemy URL)")
    p.add_argument("--out", required=True, help="artefact directory (its name is the version)")
    p.add_argument("--quarantine", help="write rows set aside here (.csv or .parquet, with reason)")
    p.add_argument("--eval-data", help="held-out data for the figures in metadata and card")
    p.add_argument("--version", help="version (default: the directory name)")
    p.add_argument("--seed", type=int, default=20261124)
    p.add_argument("--threads", type=int, default=0, help="LightGBM threads (0: all cores)")
    p.add_argument("--tune", action="store_true",
                   help="random search over num_leaves, learning_rate, min_data_in_leaf")
    p.add_argument("--tune-trials", type=int, default=20, help="at most this many trials")
    p.add_argument("--tune-seconds", type=float, help="and at most this much wall time")
    p.add_argument("--engine", choices=("local", "dask"), default="local")
    p.add_argument("--scheduler", help="Dask scheduler address (default: a local cluster)")
    p.set_defaults(run=_train)

    p = add("evaluate", "Evaluate a model on labelled data; write a self-contained HTML report "
                        "(candidate beside production).")
    p.add_argument("--model", required=True, help="alias, version or artefact directory")
    p.add_argument("--data", required=True, help="labelled data (same sources as cds train)")
    p.add_argument("--out", required=True, help="HTML report to write")
    p.add_argument("--against", default="production",
                   help="model to compare with on the same data ('none' to skip)")
    p.add_argument("--reps", type=int, default=200, help="bootstrap samples for the 95%% CIs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--root", help="models directory (default: $GMED_MODELS_DIR or ./models)")
    p.set_defaults(run=_evaluate)

    p = add("score", "Batch-score Parquet files: probabilities and exact contributions, one output "
                     "row per input row (rows that break a rule or carry a red flag say why).")
    p.add_argument("--model", default="production", help="alias, version or artefact directory")
    p.add_argument("--data", required=True, help="directory of .parquet files (or one file)")
    p.add_argument("--out", required=True, help="output directory of .parquet files")
    p.add_argument("--engine", choices=("local", "dask"), default="local")
    p.add_argument("--scheduler", help="Dask scheduler address (default: a local cluster)")
    p.add_argument("--root", help="models directory (default: $GMED_MODELS_DIR or ./models)")
    p.set_defaults(run=_score)

    p = add("recalibrate", "Refit only the calibration on local outcomes; write it as a new version "
                           "(trees unchanged, parent recorded).")
    p.add_argument("--model", required=True, help="alias, version or artefact directory")
    p.add_argument("--data", required=True, help="local labelled data (same sources as cds train)")
    p.add_argument("--method", choices=("platt", "intercept"), default="platt",
                   help="platt: intercept and slope; intercept: calibration-in-the-large only")
    p.add_argument("--version", help="new version (default: PARENT-recal-DATAHASH)")
    p.add_argument("--quarantine", help="write rows set aside here (.csv or .parquet)")
    p.add_argument("--root", help="models directory (default: $GMED_MODELS_DIR or ./models)")
    p.set_defaults(run=_recalibrate)

    p = add("models", "List model versions, promote one to an alias (gated against production "
                      "on the same data), or roll an alias back.")
    p.add_argument("action", choices=("list", "promote", "rollback"))
    p.add_argument("version", nargs="?", help="version to promote")
    p.add_argument("--alias", default="production")
    p.add_argument("--root", help="models directory (default: $GMED_MODELS_DIR or ./models)")
    p.add_argument("--data", help="labelled evaluation data for the gate (same sources as train)")
    p.add_argument("--force", action="store_true",
                   help="promote even if the gate fails or cannot run (recorded in the history)")
    p.add_argument("--reason", help="why (recorded in the history)")
    p.add_argument("--report", help="where to write the gate's HTML report "
                                    "(default: ROOT/reports/VERSION-vs-CURRENT.html)")
    p.add_argument("--reps", type=int, default=200, help="bootstrap samples")
    p.add_argument("--json", action="store_true", help="list as JSON")
    defaults = Margins()
    p.add_argument("--margin-auroc", type=float, default=defaults.auroc)
    p.add_argument("--margin-intercept", type=float, default=defaults.calibration_intercept)
    p.add_argument("--margin-slope", type=float, default=defaults.calibration_slope)
    p.add_argument("--margin-subgroup-auroc", type=float, default=defaults.subgroup_auroc)
    p.add_argument("--margin-subgroup-pp", type=float, default=defaults.subgroup_calibration_pp,
                   help="|observed - expected| margin per subgroup, percentage points")
    p.add_argument("--min-subgroup-n", type=int, default=defaults.min_subgroup_n)
    p.set_defaults(run=_models)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except InvalidRecord as e:
        for err in e.errors:
            print(f"invalid: {err.field}: {err.message} [{err.rule}]", file=sys.stderr)
        return 2
    except CdsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2 if e.status == 422 else 1
    return code


if __name__ == "__main__":
    sys.exit(main())
