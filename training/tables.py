"""Reading one table file as a clinic exports it: CSV (any of ``,`` ``;`` tab ``|``, decimal
point or comma, UTF-8 or Windows-1252) or Parquet, with every failure a :class:`UserError`
naming the file and, where the parser knows it, the line.

What is sniffed, and the rule:

* **separator**: the candidate (``,`` ``;`` tab ``|``) found most often in the header line,
  outside quotes; a header with none of them is one column (and the schema says what is missing);
* **decimal comma**: with a separator other than ``,``, numbers written ``1,38`` are read as 1.38
  when no cell of the sample is written with a decimal point; a file that mixes both is refused
  (which one is meant cannot be known). With ``,`` as separator a decimal comma can only appear
  in a quoted cell; such cells are converted later, column by column (:mod:`training.messy`);
* **encoding**: UTF-8 (with or without a byte-order mark), else Windows-1252, which every
  Western European spreadsheet writes; the encoding used is returned.

Nothing here interprets values: units, ``F/M`` and ``yes/no`` are :mod:`training.messy`'s.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cds.errors import UserError

__all__ = ["TABLE_SUFFIXES", "CsvDialect", "read_frame", "sniff"]

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")
SEPARATORS = (",", ";", "\t", "|")
SAMPLE_BYTES = 256 * 1024
_COMMA_DECIMAL = re.compile(r"^\s*-?\d+,\d+\s*$")
_POINT_DECIMAL = re.compile(r"^\s*-?\d+\.\d+\s*$")


@dataclass(frozen=True)
class CsvDialect:
    """What :func:`sniff` found: separator, decimal mark and text encoding."""

    separator: str
    decimal: str
    encoding: str

    def describe(self) -> str:
        names = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
        return (f"{names[self.separator]}-separated, decimal "
                f"{'comma' if self.decimal == ',' else 'point'}, {self.encoding}")


def _decode(path: Path, raw: bytes) -> tuple[str, str]:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise UserError(f"{path}: not text in UTF-8 or Windows-1252 (is it a spreadsheet or a "
                    "Parquet file with the wrong extension? save it as CSV)")


def _separator(header: str) -> str:
    counts = {sep: 0 for sep in SEPARATORS}
    quoted = False
    for ch in header:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(SEPARATORS, key=lambda s: counts[s])
    return best if counts[best] else ","


def sniff(path: Path) -> CsvDialect:
    """The separator, decimal mark and encoding of a CSV file (module docstring)."""
    with path.open("rb") as fh:
        raw = fh.read(SAMPLE_BYTES)
    if b"\0" in raw:
        raise UserError(f"{path}: binary, not a CSV file (a spreadsheet? save it as CSV)")
    text, encoding = _decode(path, raw)
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise UserError(f"{path}: empty (no header line)")
    sep = _separator(lines[0])
    decimal = "."
    if sep != ",":
        complete = lines[1:-1] if len(raw) == SAMPLE_BYTES else lines[1:]
        cells = [c for row in csv.reader(io.StringIO("\n".join(complete)), delimiter=sep)
                 for c in row]
        commas = sum(1 for c in cells if _COMMA_DECIMAL.match(c))
        points = sum(1 for c in cells if _POINT_DECIMAL.match(c))
        if commas and points:
            raise UserError(f"{path}: numbers are written both with a decimal comma ({commas} "
                            f"cells, e.g. 1,5) and a decimal point ({points} cells, e.g. 1.5); "
                            "which is meant cannot be told: export with one decimal mark")
        if commas:
            decimal = ","
    return CsvDialect(sep, decimal, encoding.replace("utf-8-sig", "utf-8"))


def read_csv(path: Path) -> tuple[pd.DataFrame, CsvDialect]:
    """A CSV file read with its sniffed dialect."""
    dialect = sniff(path)
    try:
        frame = pd.read_csv(path, sep=dialect.separator, decimal=dialect.decimal,
                            encoding="utf-8-sig" if dialect.encoding == "utf-8" else dialect.encoding,
                            low_memory=False, skipinitialspace=True)
    except pd.errors.EmptyDataError as e:
        raise UserError(f"{path}: empty (no header line)") from e
    except pd.errors.ParserError as e:
        raise UserError(f"{path}: not a well-formed {dialect.describe()} file: "
                        f"{str(e).strip().removeprefix('Error tokenizing data. C error: ')}") from e
    frame.columns = [str(c).strip() for c in frame.columns]
    duplicated = sorted({c for c in frame.columns if list(frame.columns).count(c) > 1})
    unnamed = [c for c in frame.columns if c.startswith("Unnamed: ")]
    if duplicated:
        raise UserError(f"{path}: column(s) {', '.join(duplicated)} appear more than once")
    return frame.drop(columns=[c for c in unnamed if frame[c].isna().all()]), dialect


def read_parquet(path: Path) -> pd.DataFrame:
    """A Parquet file, or a :class:`UserError` naming it when it is not one."""
    import pyarrow as pa

    try:
        return pd.read_parquet(path)
    except (pa.ArrowException, OSError) as e:
        raise UserError(f"{path}: not a readable Parquet file ({str(e).splitlines()[0][:200]})") from e


def read_frame(path: Path) -> pd.DataFrame:
    """One table file by its extension (``.parquet``/``.pq``, else CSV)."""
    if path.suffix.lower() in (".parquet", ".pq"):
        return read_parquet(path)
    frame, _ = read_csv(path)
    return frame
