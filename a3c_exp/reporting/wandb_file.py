"""Read an offline W&B run file (``run-<id>.wandb``) without a server or network.

In offline mode W&B keeps a run only in this file: a log of protobuf ``Record`` messages in
32 KiB blocks (the LevelDB log layout: each chunk has a 4-byte checksum, a 2-byte length and a
1-byte type: full, first, middle or last piece of a record). This reader gives back what the
run holds: config, history rows, summary and exit code; tests and scripts use it to check what
was logged.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BLOCK_SIZE = 32 * 1024
HEADER_SIZE = 7
FILE_MAGIC = b":W&B"
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def iter_record_bytes(path: Path) -> Iterator[bytes]:
    """Yield the serialised records of a ``.wandb`` file, reassembled across blocks."""
    data = Path(path).read_bytes()
    if not data.startswith(FILE_MAGIC):
        raise ValueError(f"{path}: not a W&B run file (no {FILE_MAGIC!r} header)")
    pos = HEADER_SIZE
    pending = b""
    while pos + HEADER_SIZE <= len(data):
        left_in_block = BLOCK_SIZE - pos % BLOCK_SIZE
        if left_in_block < HEADER_SIZE:  # block trailer: zero padding
            pos += left_in_block
            continue
        _checksum, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER_SIZE])
        pos += HEADER_SIZE
        chunk = data[pos : pos + length]
        pos += length
        if kind == FULL:
            yield chunk
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            yield pending + chunk
            pending = b""
        elif length == 0:  # zero padding at the end of a block
            pos += BLOCK_SIZE - pos % BLOCK_SIZE if pos % BLOCK_SIZE else 0


def _item_key(item: Any) -> str:
    return item.key or "/".join(item.nested_key)


def _put(target: dict[str, Any], item: Any) -> None:
    """Store an item's value; nested keys (media such as videos) become nested dicts."""
    value = json.loads(item.value_json)
    if item.key or len(item.nested_key) < 2:
        target[_item_key(item)] = value
        return
    *parents, leaf = item.nested_key
    for parent in parents:
        target = target.setdefault(parent, {})
    target[leaf] = value


@dataclass
class WandbRunFile:
    """What an offline run recorded."""

    run_id: str = ""
    name: str = ""
    group: str = ""
    job_type: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    exit_code: int | None = None
    files: list[str] = field(default_factory=list)

    def metric_keys(self) -> set[str]:
        """Every key that appears in any history row."""
        return {key for row in self.history for key in row}


def read_wandb_run(path: str | Path) -> WandbRunFile:
    """Parse a ``run-<id>.wandb`` file, or the only one inside a run folder."""
    from wandb.proto import wandb_internal_pb2 as pb

    path = Path(path)
    if path.is_dir():
        found = sorted(path.rglob("run-*.wandb"))
        if len(found) != 1:
            raise ValueError(f"{path}: expected one run-*.wandb file, found {len(found)}")
        path = found[0]
    run = WandbRunFile()
    for raw in iter_record_bytes(path):
        record = pb.Record()
        record.ParseFromString(raw)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            info = record.run
            run.run_id, run.name, run.group = info.run_id, info.display_name, info.run_group
            run.job_type, run.tags = info.job_type, list(info.tags)
            for item in info.config.update:
                run.config[_item_key(item)] = json.loads(item.value_json)
        elif kind == "config":
            for item in record.config.update:
                run.config[_item_key(item)] = json.loads(item.value_json)
        elif kind == "history":
            row: dict[str, Any] = {}
            for item in record.history.item:
                _put(row, item)
            run.history.append(row)
        elif kind == "summary":
            for item in record.summary.update:
                _put(run.summary, item)
        elif kind == "exit":
            run.exit_code = record.exit.exit_code
        elif kind == "files":
            run.files.extend(f.path for f in record.files.files)
    return run
