"""The ``cds`` console script: every command, one parser. ``assess`` is the core's
(:mod:`cds.cli`); the data scientist's commands (simulate, train, evaluate, score, recalibrate,
monitor, columns, models) are training's, their handlers in :mod:`training.cli_commands`.

The parser lives here, above both, because training may import the core and the core may not
import training (the layers contract in ``pyproject.toml``); :func:`cds.cli.run` maps errors
to exit statuses for both. ``python -m cds.cli`` offers ``assess`` alone.
"""

from __future__ import annotations

import argparse
import sys

from cds import cli as cds_cli

from .cli_commands import (
    _columns,
    _count,
    _evaluate,
    _fraction,
    _models,
    _monitor,
    _progress,
    _recalibrate,
    _score,
    _simulate,
    _train,
)

EXAMPLES = {
    "simulate": "cds simulate --n 200000 --seed 1 --out data/train.parquet",
    "train": "cds train --data data/train.parquet --eval-data data/eval.parquet "
             "--out models/gmed-driver/0.2.0",
    "models": "cds models promote 0.2.0 --alias production --data data/eval.parquet",
    "score": "cds score --model production --data data/batch/ --out scored/ --engine dask",
    "recalibrate": "cds recalibrate --model production --data data/local_outcomes.csv",
    "evaluate": "cds evaluate --model candidate --data data/local_outcomes.csv --out report.html",
    "columns": "cds columns suggest data/clinic_export.csv --out mapping.yaml",
    "monitor": "cds monitor --data sqlite:///instance/gmed.sqlite3 --reference data/train.parquet "
               "--out monitor.html",
}


ROOT_HELP = "models directory (default: $GMED_MODELS_DIR or ./models)"
COLUMNS_HELP = ("mapping file: the file's column names -> the contract's "
                "(YAML; cds columns suggest FILE --out writes one)")

def build_parser() -> argparse.ArgumentParser:
    """Every ``cds`` command: ``assess`` from the core (:func:`cds.cli.add_assess`), then the
    data scientist's.

    Long: a declarative table of the commands and their options, one ``add_argument`` a line, in
    the order ``cds --help`` shows them; split, the help would be read in several places.
    """
    parser = argparse.ArgumentParser(prog="cds", description=cds_cli.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text,
                           epilog=f"example: {EXAMPLES[name]}")
        p.add_argument("--quiet", action="store_true",
                       help="no progress lines on stderr (warnings and the result still shown)")
        return p

    cds_cli.add_assess(sub)

    p = add("simulate", "Simulate a cohort from the structural causal model (Parquet).")
    p.add_argument("--n", type=_count, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--controls", type=_fraction, default=0.0, help="fraction of pain-free controls")
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
    p.add_argument("--tune-trials", type=_count, default=20, help="at most this many trials")
    p.add_argument("--tune-seconds", type=float, help="and at most this much wall time")
    p.add_argument("--engine", choices=("local", "dask"), default="local")
    p.add_argument("--scheduler", help="Dask scheduler address (default: a local cluster)")
    p.add_argument("--anticipated-r2", type=_fraction,
                   help="anticipated Cox-Snell R² for the minimum sample size (Riley et al. "
                        "2020; default: Nagelkerke 0.15, their conservative choice)")
    p.add_argument("--accept-small-sample", action="store_true",
                   help="train even below the minimum sample size (recorded in the metadata)")
    p.add_argument("--columns", help=COLUMNS_HELP)
    p.set_defaults(run=_train)

    p = add("evaluate", "Evaluate a model on labelled data; write a self-contained HTML report "
                        "(candidate beside production).")
    p.add_argument("--model", required=True, help="alias, version or artefact directory")
    p.add_argument("--data", required=True, help="labelled data (same sources as cds train)")
    p.add_argument("--out", required=True, help="HTML report to write")
    p.add_argument("--against", default="production",
                   help="model to compare with on the same data ('none' to skip)")
    p.add_argument("--reps", type=_count, default=200, help="bootstrap samples for the 95%% CIs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--root", help=ROOT_HELP)
    p.add_argument("--columns", help=COLUMNS_HELP)
    p.set_defaults(run=_evaluate)

    p = add("score", "Batch-score Parquet or CSV files: probabilities and exact contributions, one output "
                     "row per input row (rows that break a rule or carry a red flag say why).")
    p.add_argument("--model", default="production", help="alias, version or artefact directory")
    p.add_argument("--data", required=True,
                   help="a .parquet or .csv file, or a directory of them (dask: Parquet only)")
    p.add_argument("--out", required=True, help="output directory of .parquet files")
    p.add_argument("--engine", choices=("local", "dask"), default="local")
    p.add_argument("--scheduler", help="Dask scheduler address (default: a local cluster)")
    p.add_argument("--root", help=ROOT_HELP)
    p.add_argument("--columns", help=COLUMNS_HELP)
    p.set_defaults(run=_score)

    p = add("recalibrate", "Refit only the calibration on local outcomes; write it as a new version "
                           "(trees unchanged, parent recorded).")
    p.add_argument("--model", required=True, help="alias, version or artefact directory")
    p.add_argument("--data", required=True, help="local labelled data (same sources as cds train)")
    p.add_argument("--method", choices=("platt", "intercept"), default="platt",
                   help="platt: intercept and slope; intercept: calibration-in-the-large only")
    p.add_argument("--version", help="new version (default: PARENT-recal-DATAHASH)")
    p.add_argument("--quarantine", help="write rows set aside here (.csv or .parquet)")
    p.add_argument("--root", help=ROOT_HELP)
    p.add_argument("--columns", help=COLUMNS_HELP)
    p.set_defaults(run=_recalibrate)

    p = add("monitor", "Monitor a deployed model by month: input drift (PSI per column), "
                       "out-of-population rate, predictions, observed vs expected with CIs.")
    p.add_argument("--data", required=True,
                   help="the service's store (SQLAlchemy URL: every assessment) or a data file "
                        "with recorded_at")
    p.add_argument("--model", default="production", help="alias, version or artefact directory")
    p.add_argument("--reference", help="baseline data for drift (best: the training data; "
                                       "default: the first month)")
    p.add_argument("--columns", help="mapping file for the data's column names")
    p.add_argument("--out", help="HTML report to write")
    p.add_argument("--json", help="also write the figures as JSON here")
    p.add_argument("--fail-on-alarm", action="store_true", help="exit 3 when an alarm is raised")
    p.add_argument("--root", help=ROOT_HELP)
    p.set_defaults(run=_monitor)

    p = add("columns", "Suggest how a data file's columns map to the contract's (by name and by "
                       "values); write the mapping for --columns.")
    p.add_argument("action", choices=("suggest",))
    p.add_argument("file", help="a data file (.csv, .parquet, ...) as for cds train")
    p.add_argument("--out", help="write the suggested mapping here (YAML) to review")
    p.add_argument("--json", action="store_true", help="print the suggestions as JSON")
    p.set_defaults(run=_columns)

    p = add("models", "List model versions, promote one to an alias (gated against production "
                      "on the same data), roll an alias back along its history, or show the "
                      "history; unset removes an alias (cds models unset --alias shadow ends "
                      "shadow mode).")
    p.add_argument("action", choices=("list", "promote", "rollback", "history", "unset"))
    p.add_argument("version", nargs="?", help="version to promote")
    p.add_argument("--alias", help="alias to move or show (default: production; history: all)")
    p.add_argument("--root", help=ROOT_HELP)
    p.add_argument("--data", help="labelled evaluation data for the gate (same sources as train)")
    p.add_argument("--force", action="store_true",
                   help="promote even if the gate fails or cannot run (recorded in the history)")
    p.add_argument("--reason", help="why (recorded in the history)")
    p.add_argument("--report", help="where to write the gate's HTML report "
                                    "(default: ROOT/reports/VERSION-vs-CURRENT.html)")
    p.add_argument("--reps", type=_count, default=200, help="bootstrap samples")
    p.add_argument("--json", action="store_true", help="list as JSON")
    p.add_argument("--columns", help="mapping file for the gate data's column names")
    p.add_argument("--margin-auroc", type=float,
                   help="override the plan (models/change_control.json) for this promotion; "
                        "recorded as a deviation")
    p.add_argument("--margin-intercept", type=float)
    p.add_argument("--margin-slope", type=float)
    p.add_argument("--margin-subgroup-auroc", type=float)
    p.add_argument("--margin-subgroup-pp", type=float,
                   help="|observed - expected| margin per subgroup, percentage points")
    p.add_argument("--min-subgroup-n", type=int)
    p.set_defaults(run=_models)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command != "assess":
        _progress(args)  # the elapsed time in progress lines counts from here
    return cds_cli.run(args)


if __name__ == "__main__":
    sys.exit(main())
