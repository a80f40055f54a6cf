"""``cds score`` on the local engine: files in, files out, in three threads.

Chunks (at most :data:`training.score.CHUNK_ROWS` rows; a file of fewer rows is one chunk) are
read ahead by a reader thread (Arrow decodes Parquet without the GIL), prepared
(:func:`training.score.prepare`: tidy, validate, encode), explained (the explainer's own
threads) and finished in the calling thread, and written by a writer thread while the next
chunk is scored. Chunks are written in order, file by file; a file is closed and reported
(``done``) when the next file's first chunk is written, or at the end.

Explaining chunk *k* in a thread of its own while chunk *k + 1* is prepared was tried and
measured (same run, 500k rows, load 4.5-5 on 2 cores: wall 5.0-6.0 s against 4.0-5.1 s in
turn, and up to 15 % more CPU): the pandas work holds the GIL that the explainer's threads
need between their numpy calls, so the two slow each other down instead of overlapping.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cds.errors import UserError
from cds.model import Model

from .columns import Mapping
from .score import CHUNK_ROWS, explain, finish, prepare
from .tables import read_frame

__all__ = ["chunks", "score_file", "score_files", "write"]


def chunks(file: Path, rows: int) -> Iterator[pd.DataFrame]:
    """The rows of ``file`` as frames of at most ``rows`` rows (Parquet is read by batches; a
    CSV file whole, as :func:`training.tables.read_frame` reads it); at least one frame."""
    if file.suffix.lower() not in (".parquet", ".pq"):
        yield read_frame(file)
        return
    try:
        parquet = pq.ParquetFile(file)
        if parquet.metadata.num_rows <= rows:
            yield read_frame(file)
            return
        schema = parquet.schema_arrow
        for batch in parquet.iter_batches(batch_size=rows):
            yield pa.Table.from_batches([batch], schema=schema).to_pandas()
    except (pa.ArrowException, OSError) as e:
        raise UserError(f"{file}: not a readable Parquet file ({str(e).splitlines()[0][:200]})"
                        ) from e


def write(table: Any, path: Path, writer: Any) -> Any:
    """Append ``table`` to the Parquet file at ``path`` (opened on the first chunk). Text columns
    only are dictionary-encoded and compressed: the numbers are all distinct, a dictionary or
    compression costs time there."""
    if writer is None:
        text = [f.name for f in table.schema if f.type in (pa.string(), pa.large_string())]
        # numbers uncompressed too: snappy saves ~10 % of distinct doubles for ~35 % more of
        # the writer's CPU (measured on 125k rows: 37 vs 33 MB, 70 vs 105 ms)
        writer = pq.ParquetWriter(path, table.schema, use_dictionary=text or False,
                                  compression={f.name: "snappy" if f.name in text else "none"
                                               for f in table.schema})
    writer.write_table(table.cast(writer.schema))
    return writer


def read_ahead(files: list[Path], rows: int, reader: ThreadPoolExecutor
               ) -> Iterator[tuple[int, pd.DataFrame]]:
    """(file's position, chunk) of every chunk of every file, in order, the next one read in
    ``reader``'s thread while this one is scored (Arrow's Parquet reader releases the GIL)."""
    stream = ((i, chunk) for i, file in enumerate(files) for chunk in chunks(file, rows))
    ahead = reader.submit(next, stream, None)
    while (item := ahead.result()) is not None:
        ahead = reader.submit(next, stream, None)
        yield item


class _Sink:
    """Scored chunks written in order, file by file, in ``pool``'s thread."""

    def __init__(self, paths: list[Path], pool: ThreadPoolExecutor,
                 done: Callable[[int, int], None]) -> None:
        self.paths, self.pool, self.done = paths, pool, done
        self.counts = [0] * len(paths)
        self.file: int | None = None
        self.writer: Any = None
        self.pending: Future[Any] | None = None

    def put(self, i: int, scored: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(scored, preserve_index=False)
        self._settle()
        if self.file is not None and self.file != i:
            self._close_file()
        self.file = i
        self.pending = self.pool.submit(write, table, self.paths[i], self.writer)
        self.counts[i] += len(scored)

    def close(self) -> None:
        self._settle()
        if self.file is not None:
            self._close_file()
            self.file = None

    def abort(self) -> None:
        """After a failure: the open file closed as written so far (the failure is reported,
        not a second one from the write still under way)."""
        with contextlib.suppress(Exception):
            self._settle()
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def _settle(self) -> None:
        if self.pending is not None:
            pending, self.pending = self.pending, None
            self.writer = pending.result()

    def _close_file(self) -> None:
        assert self.file is not None
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        self.done(self.file, self.counts[self.file])


def _pipeline(model: Model, stream: Iterator[tuple[int, pd.DataFrame]], paths: list[Path],
              mapping: Mapping | None, writes: ThreadPoolExecutor,
              done: Callable[[int, int], None]) -> int:
    """Score ``stream``'s chunks into ``paths`` (by the chunk's file position); the rows."""
    sink = _Sink(paths, writes, done)
    try:
        for i, chunk in stream:
            prepared = prepare(chunk, mapping)
            sink.put(i, prepared if isinstance(prepared, pd.DataFrame)
                     else finish(model, prepared, explain(model, prepared)))
        sink.close()
    finally:
        sink.abort()
    return sum(sink.counts)


def score_file(model: Model, file: Path, path: Path, mapping: Mapping | None,
               pool: ThreadPoolExecutor, rows: int = CHUNK_ROWS) -> int:
    """Score one file chunk by chunk into ``path`` (written in ``pool``'s thread); its rows."""
    return _pipeline(model, ((0, chunk) for chunk in chunks(file, rows)), [path], mapping, pool,
                     lambda i, n: None)


def score_files(model: Model, files: list[Path], paths: list[Path], mapping: Mapping | None,
                done: Callable[[int, int], None]) -> int:
    """Score each of ``files`` into the path at its position, reporting each file when it is
    written (``done(position, rows)``); the rows."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="score-read") as reader, \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="score-write") as writes:
        return _pipeline(model, read_ahead(files, CHUNK_ROWS, reader), paths, mapping, writes,
                         done)
