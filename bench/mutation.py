"""Mutation score of the modules where a silent bug hurts a patient or lets someone in.

    python bench/mutation.py                      # every module below, one after another
    python bench/mutation.py cds/safety.py        # one (or a few) of them
    python bench/mutation.py --show cds/safety.py # and print each survivor's diff

Each module is mutated by mutmut (3.x) in a private copy of the working tree (the tree itself
is never touched), against only the test files that cover it, so a module takes minutes, not
hours. mutmut forks each mutant's test run from a warm interpreter and runs only the tests that
reach the mutated function; the tiny fixture model is trained once for the whole run and handed
to every session (``GMED_TEST_TINY_MODEL``, see ``tests/conftest.py``). mutmut mutates code
inside functions and methods (operators, comparisons, constants, arguments, return values), not
module-level constants. Where only part of a module guards the door (model verification in
``cds/model.py``, the CSRF functions of ``service/ui/pages.py``) only those functions are mutated.

Prints one row per module: mutants, killed, survived, no tests (no selected test reaches the
function), timeout, and the score ``(killed + timeout) / mutants`` (a timeout is a mutant the
tests stopped: an endless loop). Survivors are listed by mutmut name (``mutmut show NAME`` in
the copy, or ``--show``, prints the change). CPU-heavy: ``--max-children`` (default 2) test
runs at once; run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


@dataclass(frozen=True)
class Target:
    path: str
    tests: tuple[str, ...]
    functions: tuple[str, ...] = ()  # mutmut name globs; empty: every function of the module
    label: str = ""  # which part, when ``functions`` names one

    @property
    def module(self) -> str:
        return self.path.removesuffix(".py").replace("/", ".")

    def names(self) -> list[str]:
        return [f"{self.module}.{f}" for f in self.functions]


TARGETS = (
    Target("cds/safety.py", ("tests/test_safety.py", "tests/test_pin_safety.py")),
    Target("cds/validate.py", ("tests/test_validate.py", "tests/test_pin_validation.py")),
    Target("cds/model.py", ("tests/test_model.py", "tests/test_pin_model_artefact.py",
                            "tests/test_faults_model.py"),
           ("x_verify_manifest__mutmut_*", "x_sha256_file__mutmut_*", "x_load_model__mutmut_*",
            "x__check_provenance__mutmut_*", "x__read_json__mutmut_*", "x_resolve__mutmut_*"),
           "verification"),
    Target("service/security/auth.py", ("tests/test_service_auth.py", "tests/test_pin_auth.py")),
    Target("service/security/smart.py", ("tests/test_service_smart.py",)),
    Target("service/http/limits.py", ("tests/test_service_limits.py",
                                 "tests/test_service_amplification.py",
                                 "tests/test_service_auth.py", "tests/test_service_headers.py")),
    # the gate's decision; promote() around it is exercised by tests that train and evaluate
    # models (minutes per mutant), so only check() is mutated, against its own tests
    Target("training/gate.py", ("tests/test_pin_gate.py",), ("x_check__mutmut_*",), "check"),
    Target("training/calibration.py", ("tests/test_pin_gate.py",)),
    Target("service/ui/pages.py", ("tests/test_ui.py", "tests/test_service_smart.py",
                             "tests/test_service_scoping.py"),
           ("x__csrf_token__mutmut_*", "x__sign__mutmut_*", "x__csrf_ok__mutmut_*",
            "x__headers__mutmut_*"), "CSRF"),
)
# mutmut's exit codes (mutmut.stats.status_by_exit_code, which cannot be imported outside a
# configured project): 1 and 3 killed, 0 survived, 5 and 33 no tests, None not checked.
KILLED, SURVIVED, NO_TESTS = {1, 3}, {0}, {5, 33}
TIMEOUT = {36, -24, 24, 152, 255}


def _copy_tree(dest: Path) -> None:
    """The working tree's files (tracked and new, not ignored) into ``dest``."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    for name in filter(None, (n.decode() for n in listed)):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def _configure(work: Path, target: Target) -> None:
    config = {
        "source_paths": ["cds", "service", "training"],
        "only_mutate": [target.path],
        "pytest_add_cli_args_test_selection": list(target.tests),
        "pytest_add_cli_args": ["-p", "no:cacheprovider", "-x", "-q"],
        "also_copy": ["models", "examples"],
    }
    lines = ["", "[tool.mutmut]"] + [f"{k} = {json.dumps(v)}" for k, v in config.items()]
    with (work / "pyproject.toml").open("a") as fh:
        fh.write("\n".join(lines) + "\n")


def _count(work: Path, target: Target) -> dict[str, object]:
    meta = work / "mutants" / f"{target.path}.meta"
    codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"] \
        if meta.is_file() else {}
    if target.functions:
        codes = {k: v for k, v in codes.items()
                 if any(fnmatch.fnmatchcase(k, pattern) for pattern in target.names())}
    counts = {"mutants": len(codes),
              "killed": sum(v in KILLED for v in codes.values()),
              "survived": sum(v in SURVIVED for v in codes.values()),
              "no tests": sum(v in NO_TESTS for v in codes.values()),
              "timeout": sum(v in TIMEOUT for v in codes.values())}
    counts["other"] = counts["mutants"] - sum(  # type: ignore[operator]
        int(counts[k]) for k in ("killed", "survived", "no tests", "timeout"))
    counts["survivors"] = sorted(k for k, v in codes.items()
                                 if v not in KILLED and v not in TIMEOUT)
    return counts


def run(target: Target, base: Path, tiny: Path, max_children: int, show: bool) -> dict[str, object]:
    work = base / target.path.replace("/", "_")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    _copy_tree(work)
    _configure(work, target)
    mutmut = Path(sys.executable).with_name("mutmut")
    env = {**os.environ, "GMED_TEST_TINY_MODEL": str(tiny)}
    env.pop("PYTHONPATH", None)  # mutmut puts its mutated copy first itself
    started = time.monotonic()
    with (work / "mutmut.log").open("w") as log:
        done = subprocess.run([str(mutmut), "run", "--max-children", str(max_children),
                               *target.names()], cwd=work, env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    counts = _count(work, target)
    counts["seconds"] = round(time.monotonic() - started)
    if done.returncode != 0 or not counts["mutants"]:
        counts["error"] = f"mutmut exited {done.returncode}; see {work / 'mutmut.log'}"
    if show:
        for name in counts["survivors"]:  # type: ignore[attr-defined]
            diff = subprocess.run([str(mutmut), "show", name], cwd=work, env=env,
                                  capture_output=True, text=True).stdout
            print(diff, flush=True)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="paths of the modules to mutate (default: all)")
    parser.add_argument("--max-children", type=int, default=2)
    parser.add_argument("--show", action="store_true", help="print each survivor's change")
    parser.add_argument("--work", type=Path, help="where the copies go (default: a temp dir, kept)")
    args = parser.parse_args(argv)
    by_path = {t.path: t for t in TARGETS}
    unknown = [m for m in args.modules if m not in by_path]
    if unknown:
        parser.error(f"not a target: {', '.join(unknown)} (targets: {', '.join(by_path)})")
    targets = [by_path[m] for m in args.modules] or list(TARGETS)
    base = args.work or Path(tempfile.mkdtemp(prefix="gmed-mutation-"))
    base.mkdir(parents=True, exist_ok=True)
    print(f"work: {base}", flush=True)

    from tests.conftest import build_tiny_model

    (base / "tiny").mkdir(exist_ok=True)
    tiny = build_tiny_model(base / "tiny")
    rows = []
    for target in targets:
        print(f"mutating {target.path} against {', '.join(target.tests)} ...", flush=True)
        counts = run(target, base, tiny, args.max_children, args.show)
        rows.append((target, counts))
        if "error" in counts:
            print(f"  {counts['error']}", flush=True)
        for name in counts["survivors"]:  # type: ignore[attr-defined]
            print(f"  survived: {name}", flush=True)
    header = ("module", "mutants", "killed", "survived", "no tests", "timeout", "score %", "s")
    print("\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for target, c in rows:
        total = int(c["mutants"])  # type: ignore[call-overload]
        detected = int(c["killed"]) + int(c["timeout"])  # type: ignore[call-overload]
        score = f"{100 * detected / total:.1f}" if total else "-"
        print(f"| {target.path}{f' ({target.label})' if target.label else ''}"
              f" | {total} | {c['killed']} | {c['survived']} | {c['no tests']} | {c['timeout']}"
              f" | {score} | {c['seconds']} |")
    return 1 if any("error" in c for _, c in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
