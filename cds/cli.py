"""The ``cds`` command line. Training commands import the heavy libraries only when run.

Exit status: 0 done; 2 a mistake in what was given (a file, column, row, name or option: the
message names it and the rule, no traceback); 1 the promotion gate refused, or a bug (with its
traceback); 3 ``cds monitor --fail-on-alarm`` raised an alarm.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .errors import CdsError, InvalidRecord, ModelUnavailable, UserError

ASSESS_HELP = "Assess one patient record (JSON) and print the Assessment."
EXAMPLES = {
    "assess": "cds assess --input examples/runner_pfp_hip_driven.json --explain",
}


def _assess(args: argparse.Namespace) -> int:
    from .assess import assess
    from .model import load_model
    from .render import as_text, json_body

    record = _read_record(Path(args.input))
    assessment = assess(record, model=load_model(args.model))
    print(as_text(assessment) if args.explain else json.dumps(json_body(assessment), indent=2))
    return 0


def _read_record(path: Path) -> dict[str, Any]:
    """A patient record from a JSON file, or a :class:`UserError` naming the file and the rule."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise UserError(f"{path}: no such file") from e
    except IsADirectoryError as e:
        raise UserError(f"{path}: a directory; give one patient record (a .json file)") from e
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text (a patient record is a JSON file)") from e
    if not text.strip():
        raise UserError(f"{path}: empty (a patient record is a JSON object)")
    try:
        record = json.loads(text)
    except ValueError as e:
        raise UserError(f"{path}: not JSON ({e})") from e
    if not isinstance(record, dict):
        raise UserError(f"{path}: a patient record is a JSON object ({{...}}), not a "
                        f"{type(record).__name__}")
    return record


def add_assess(sub: Any) -> None:
    """The ``assess`` subcommand on ``sub`` (an argparse subparsers action): the core's only
    command, shared by this module's own parser and the full ``cds`` command line
    (:mod:`training.cli`)."""
    p = sub.add_parser("assess", help=ASSESS_HELP, description=ASSESS_HELP,
                       epilog=f"example: {EXAMPLES['assess']}")
    p.add_argument("--input", required=True, help="patient record JSON file")
    p.add_argument("--model", default="production", help="alias, version or directory")
    p.add_argument("--explain", action="store_true", help="print a readable explanation")
    p.set_defaults(run=_assess)


def build_parser() -> argparse.ArgumentParser:
    """``python -m cds.cli``: the core's command (``assess``) alone. The ``cds`` console script
    (:func:`training.cli.main`) offers it beside the data scientist's commands; the core does not
    import training, so it cannot offer them here."""
    parser = argparse.ArgumentParser(prog="cds", description=__doc__)
    add_assess(parser.add_subparsers(dest="command", required=True))
    return parser


def run(args: argparse.Namespace) -> int:
    """Run a parsed command (its ``run`` handler); a user's mistake is a message and exit 2, a
    refusal exit 1, never a traceback (a bug keeps its traceback)."""
    try:
        code: int = args.run(args)
    except InvalidRecord as e:
        for err in e.errors:
            print(f"invalid: {err.field}: {err.message} [{err.rule}]", file=sys.stderr)
        return 2
    except (UserError, ModelUnavailable) as e:  # the model named is the user's choice too
        print(f"error: {e}", file=sys.stderr)
        return 2
    except CdsError as e:  # a refusal on purpose (the gate): said, not a traceback
        print(f"error: {e}", file=sys.stderr)
        return 1
    except (PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError) as e:
        # writing where the user said cannot be done: name the path, not a traceback
        print(f"error: {e.filename}: {e.strerror}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return code


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
