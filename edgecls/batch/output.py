"""The output folder of ``edgecls batch``: Parquet shards committed whole, and the run's manifest.

``OUT/part-*.parquet`` are complete shards (each written under a temporary name, then renamed into place:
a shard is either all there or not there); ``OUT/_edgecls_batch.json`` says which model and settings
made them, so that ``resume`` never mixes two models' answers. A resumed run reads the keys already in
OUT and classifies only the rest; files another engine staged (Ray writes its own) are adopted by
:meth:`ResultStore.adopt`, which drops any row already committed, so OUT holds each input once.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

from edgecls.runtime.errors import BackendUnavailableError, OptionError

__all__ = ["ResultStore", "MANIFEST", "SCHEMA_FIELDS", "pyarrow_parquet", "schema", "row_key"]

MANIFEST = "_edgecls_batch.json"
STAGING_PREFIX = ".staging-"
_MATCHING = ("model_sha256", "top_k", "every_seconds")
"""Manifest entries a resumed run must share with the run it continues."""
SCHEMA_FIELDS = ("path", "frame", "time_s", "label", "score", "labels", "scores", "error", "model", "model_sha256")


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
                      ("label", pa.string()), ("score", pa.float32()), ("labels", pa.list_(pa.string())),
                      ("scores", pa.list_(pa.float32())), ("error", pa.string()), ("model", pa.string()),
                      ("model_sha256", pa.string())])


def row_key(path: str, frame: int | None) -> str:
    """The key of a row (as :attr:`edgecls.batch.inputs.Item.key`)."""
    return path if frame is None else f"{path}#{frame}"


def _keys(table) -> list[str]:
    frames = table.column("frame").to_pylist()
    return [row_key(p, f) for p, f in zip(table.column("path").to_pylist(), frames, strict=True)]


def commit_table(out: Path, table, name: str) -> Path:
    """Write ``table`` as ``OUT/part-NAME.parquet``, atomically (a temporary file, then a rename)."""
    pq = pyarrow_parquet()
    final = out / f"part-{name}.parquet"
    tmp = out / f".tmp-{name}.parquet"
    pq.write_table(table, tmp)
    os.replace(tmp, final)
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
        tmp = self.out / f".tmp-{MANIFEST}"
        tmp.write_text(json.dumps(manifest, indent=1))
        os.replace(tmp, self.out / MANIFEST)

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

    def done_keys(self) -> set[str]:
        """Keys of every row committed so far."""
        pq = pyarrow_parquet()
        keys: set[str] = set()
        for part in self.parts():
            keys.update(_keys(pq.read_table(part, columns=["path", "frame"])))
        return keys

    def staging(self, run_id: str) -> Path:
        """A folder for another engine's writer (Ray's); adopt it with :meth:`adopt`."""
        return self.out / f"{STAGING_PREFIX}{run_id}"

    def adopt(self, done: set[str] | None = None) -> tuple[int, int]:
        """Commit every complete Parquet file in the staging folders (a file without its footer, cut off
        by a kill, is dropped, and so are rows whose key is committed already), then remove them.
        Returns (rows committed, duplicate rows dropped)."""
        pq = pyarrow_parquet()
        done = self.done_keys() if done is None else done
        committed = dropped = 0
        for folder in sorted(self.out.glob(f"{STAGING_PREFIX}*")):
            for i, staged in enumerate(sorted(folder.rglob("*.parquet"))):
                try:
                    table = pq.read_table(staged)
                except Exception:  # a half-written file (any pyarrow error): its rows are redone
                    continue
                keys = _keys(table)
                keep = [j for j, k in enumerate(keys) if k not in done]
                dropped += len(keys) - len(keep)
                if keep:
                    import pyarrow as pa

                    table = table.take(pa.array(keep)) if len(keep) < len(keys) else table
                    commit_table(self.out, table.select(list(SCHEMA_FIELDS)), f"{folder.name[len(STAGING_PREFIX):]}-{i:05d}")
                    done.update(keys[j] for j in keep)
                    committed += len(keep)
            shutil.rmtree(folder, ignore_errors=True)
        return committed, dropped

    def read(self, columns: Iterable[str] | None = None):
        """Every committed row, as one pyarrow Table."""
        import pyarrow as pa

        pq = pyarrow_parquet()
        tables = [pq.read_table(p, columns=None if columns is None else list(columns)) for p in self.parts()]
        return pa.concat_tables(tables) if tables else schema().empty_table()
