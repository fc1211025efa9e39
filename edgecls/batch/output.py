"""The output folder of ``edgecls batch``: Parquet shards committed whole, and the run's manifest.

``OUT/part-*.parquet`` are complete shards (the rows of one item, one per box for an image with boxes,
always in the same shard) (each written under a temporary name, then renamed into place:
a shard is either all there or not there); ``OUT/_edgecls_batch.json`` says which model and settings
made them, so that ``resume`` never mixes two models' answers. A resumed run reads the keys already in
OUT and classifies only the rest, so OUT holds each input once.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

from edgecls.batch.inputs import item_key
from edgecls.runtime.errors import BackendUnavailableError, OptionError, OutputError
from edgecls.runtime.files import write_whole

__all__ = ["ResultStore", "MANIFEST", "SCHEMA_FIELDS", "pyarrow_parquet", "schema"]

MANIFEST = "_edgecls_batch.json"
_MATCHING = ("model_sha256", "top_k", "every_seconds", "crop")
"""Manifest entries a resumed run must share with the run it continues."""
SCHEMA_FIELDS = ("path", "frame", "time_s", "box", "region", "detected", "crop", "skipped", "label", "score", "labels",
                 "scores", "error", "model", "model_sha256")


def pyarrow_parquet() -> ModuleType:
    """``pyarrow.parquet``.

    Raises:
        BackendUnavailableError: pyarrow is not installed (extra ``batch``).
    """
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise BackendUnavailableError("edgecls batch writes Parquet with pyarrow, which is not installed: "
                                      "pip install 'edgecls[batch]'", extra="batch") from None
    return pq


def schema():
    """The Parquet schema of a result row."""
    import pyarrow as pa

    return pa.schema([("path", pa.string()), ("frame", pa.int64()), ("time_s", pa.float64()),
                      ("box", pa.int64()), ("region", pa.list_(pa.float64())), ("detected", pa.string()),
                      ("crop", pa.list_(pa.int64())), ("skipped", pa.string()), ("label", pa.string()), ("score", pa.float32()), ("labels", pa.list_(pa.string())),
                      ("scores", pa.list_(pa.float32())), ("error", pa.string()), ("model", pa.string()),
                      ("model_sha256", pa.string())])


def _keys(table) -> list[str]:
    frames = table.column("frame").to_pylist()
    return [item_key(p, f) for p, f in zip(table.column("path").to_pylist(), frames, strict=True)]


def commit_table(out: Path, table, name: str) -> Path:
    """Write ``table`` as ``OUT/part-NAME.parquet``, atomically (a temporary file, then a rename).

    Raises:
        EdgeclsError: the file cannot be written (a full disk, a folder removed meanwhile); nothing of
            it is left behind.
    """
    pq = pyarrow_parquet()
    final = out / f"part-{name}.parquet"
    try:
        write_whole(final, lambda handle: pq.write_table(table, handle), tmp_prefix=f".tmp-{name}.")
    except OSError as exc:
        raise OutputError(f"{final}: cannot write results ({exc.strerror or exc}); the shards written before "
                           "are kept: run again with resume") from exc
    return final


class ResultStore:
    """The output folder: what is done, and committing more.

    Raises (on creation):
        OptionError: ``out`` is a file; or it holds results and ``resume`` is False; or ``resume`` with a
            manifest of another model or other settings.
        BackendUnavailableError: pyarrow is missing.
    """

    def __init__(self, out: str | Path, manifest: dict[str, Any], *, resume: bool) -> None:
        pyarrow_parquet()
        self.out = Path(out)
        if self.out.exists() and not self.out.is_dir():
            raise OptionError(f"{self.out}: is a file; the output is a folder of Parquet files")
        previous = self._manifest()
        if previous is not None or self.parts():
            if not resume:
                raise OptionError(f"{self.out}: holds the results of an earlier run; resume it (resume=True) or "
                                  "choose another folder", options=("resume",))
            if previous is not None:
                changed = [k for k in _MATCHING if previous.get(k) != manifest.get(k)]
                if changed:
                    raise OptionError(f"{self.out}: was made with other settings ("
                                      + ", ".join(f"{k} {previous.get(k)!r}, now {manifest.get(k)!r}" for k in changed)
                                      + "); a resumed run must use the same model and settings")
        self.out.mkdir(parents=True, exist_ok=True)
        for stale in self.out.glob(".tmp-*"):  # a shard a killed run had not finished: not committed
            stale.unlink(missing_ok=True)
        write_whole(self.out / MANIFEST, json.dumps(manifest, indent=1).encode(), tmp_prefix=f".tmp-{MANIFEST}.")

    def _manifest(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.out / MANIFEST).read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise OptionError(f"{self.out / MANIFEST}: unreadable ({exc}); not a batch output folder?") from None

    def parts(self) -> list[Path]:
        """The committed shards."""
        return sorted(self.out.glob("part-*.parquet")) if self.out.is_dir() else []

    def row_count(self) -> int:
        """Rows committed so far (an image with boxes has one per box)."""
        pq = pyarrow_parquet()
        return sum(pq.ParquetFile(part).metadata.num_rows for part in self.parts())

    def done_keys(self) -> set[str]:
        """Keys of every item committed so far (the rows of an item are committed together)."""
        pq = pyarrow_parquet()
        keys: set[str] = set()
        for part in self.parts():
            keys.update(_keys(pq.read_table(part, columns=["path", "frame"])))
        return keys
