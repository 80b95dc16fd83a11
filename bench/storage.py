"""The results store: one JSON document per run, grouped by machine. No torch here.

Layout: ``<results>/<machine_id>/<UTC time>_<run id>.json``. A run's document is rewritten
atomically (temporary file, then rename) each time a model completes, so whatever was
measured before a crash or Ctrl-C is on disk. Other runs' files are never touched.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import StorageError

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-") or "unknown"


@contextlib.contextmanager
def atomic_path(path: Path):
    """Yield a temporary path beside ``path``; on success it replaces ``path`` at once.

    On any failure (Ctrl-C included) the temporary file is removed and ``path`` is left as
    it was, so readers only ever see a complete file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


@dataclass
class RunDocument:
    """One run: its environment, its config and the records measured so far."""

    path: Path
    header: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    write: bool = True  # False on torchrun ranks other than 0: only rank 0 writes

    def as_dict(self) -> dict[str, Any]:
        return {**self.header, "records": self.records}

    def add(self, records: list[dict[str, Any]]) -> None:
        self.records.extend(records)
        self.save()

    def finish(self, status: str, finished_utc: str) -> None:
        self.header["status"] = status
        self.header["finished_utc"] = finished_utc
        self.save()

    def save(self) -> None:
        if not self.write:
            return
        text = json.dumps(self.as_dict(), indent=1, sort_keys=False, default=str) + "\n"
        try:
            atomic_write_text(self.path, text)
        except OSError as e:
            raise StorageError(
                f"Cannot write results to {self.path}: {e.strerror}. Pick a writable --out DIR."
            ) from e


class ResultStore:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def new_run(self, header: dict[str, Any], write: bool = True) -> RunDocument:
        machine_id = slug(header["machine"]["id"])
        stamp = header["started_utc"].replace(":", "").replace("-", "")
        path = self.root / machine_id / f"{stamp}_{header['run_id']}.json"
        doc = RunDocument(
            path=path, header={"schema_version": SCHEMA_VERSION, **header}, write=write
        )
        doc.save()
        return doc

    def open_run(self, run_id: str | None = None) -> RunDocument:
        """An existing run to add records to (``--resume``): the one called ``run_id``, or
        the latest one started (any machine) when ``run_id`` is None."""
        found = []
        for path in self.files():
            stamp, _, rid = path.stem.rpartition("_")
            if run_id is None or rid == run_id:
                found.append((stamp, path))
        if not found:
            what = f"no run '{run_id}'" if run_id else "no run"
            raise StorageError(
                f"--resume: {what} in {self.root}/. Give a run id from its file names "
                "(<time>_<run id>.json), or run without --resume."
            )
        path = max(found)[1]
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise StorageError(f"--resume: cannot read {path}: {e}.") from e
        records = doc.pop("records", None)
        if not isinstance(records, list):
            raise StorageError(f"--resume: {path} is not a cnn-bench results document.")
        return RunDocument(path=path, header=doc, records=records)

    def files(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.glob("*/*.json") if p.is_file())

    def load(self) -> Iterator[dict[str, Any]]:
        """Every readable run document; an unreadable one is skipped with a warning."""
        for path in self.files():
            doc = read_document(path)
            if doc is not None:
                doc["_path"] = str(path.relative_to(self.root))
                yield doc


def read_document(path: Path) -> dict[str, Any] | None:
    """One run document, or None (with a warning) when it cannot be read as one."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        logger.warning("Skipping unreadable results file %s: %s", path, e)
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("records"), list):
        logger.warning("Skipping %s: not a cnn-bench results document", path)
        return None
    if doc.get("schema_version", 0) > SCHEMA_VERSION:
        logger.warning(
            "Skipping %s: schema version %s is newer than this cnn-bench understands (%s)",
            path,
            doc.get("schema_version"),
            SCHEMA_VERSION,
        )
        return None
    return doc
