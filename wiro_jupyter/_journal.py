"""The task journal: every Run is recorded locally so no paid-for result is lost.

A row is written *before* the Run request is sent (status `submitting`), then
completed with the task id and token as soon as the server answers, and kept
current as the task moves. After a kernel restart or crash,
`wiro_jupyter.tasks()` lists the rows and `recover()` rebuilds a Task from one.

What is stored: model, parameters (file inputs by name and hash only, never
their bytes), ids, status, times, output names/URLs and where they were saved.
Never the API key or secret. SQLite in WAL mode under `$WIRO_HOME` (default
`~/.wiro-jupyter`), one short connection per write, so several kernels may
share it. Batches (`wiro_jupyter.batch`) resume from the same table: a row
carries its batch's name and the item's index, and a fingerprint of the request
(model + journal-safe parameters) lets `run(reuse=True)` find an identical one.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import _render

SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    rowid INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id TEXT,
    token TEXT,
    model TEXT NOT NULL,
    parameters TEXT NOT NULL,
    api_url TEXT NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    outputs TEXT NOT NULL DEFAULT '[]',
    saved TEXT NOT NULL DEFAULT '[]',
    error TEXT,
    batch TEXT,
    item INTEGER,
    fingerprint TEXT
);
CREATE INDEX IF NOT EXISTS tasks_task_id ON tasks(task_id);
CREATE INDEX IF NOT EXISTS tasks_token ON tasks(token);
"""
# Columns added after the first release, in table order: a journal written by an older version gets
# them on first open (`ALTER TABLE … ADD COLUMN` appends, so old rows read NULL).
ADDED_COLUMNS = (("batch", "TEXT"), ("item", "INTEGER"), ("fingerprint", "TEXT"))
# Indexes on those columns: created only once the columns exist.
INDEXES = """
CREATE INDEX IF NOT EXISTS tasks_batch_item ON tasks(batch, item);
CREATE INDEX IF NOT EXISTS tasks_fingerprint ON tasks(fingerprint);
"""
# The statuses of a row whose Run may have reached the server: `submitting` (the process died while
# sending it) and `submit_unknown` (the request failed after it may have arrived).
UNSURE = ("submitting", "submit_unknown")


def wiro_home() -> Path:
    return Path(os.environ.get("WIRO_HOME") or Path.home() / ".wiro-jupyter").expanduser()


def _private_file(path: Path) -> None:
    """Create `path` (and its folder) readable by the owner only from the first byte: 0700 / 0600.

    The journal holds prompts and output URLs; SQLite creates its -wal and -shm files with
    the database file's mode, so they are private too.
    """
    folder = path.parent
    if not folder.exists():
        folder.mkdir(parents=True, mode=0o700)
        os.chmod(folder, 0o700)  # mkdir's mode is reduced by the umask
    if not path.exists():
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    with contextlib.suppress(OSError):
        os.chmod(path, 0o600)


@dataclass
class JournalEntry:
    rowid: int
    task_id: str | None
    token: str | None
    model: str
    parameters: dict[str, Any]
    api_url: str
    status: str
    created: float
    updated: float
    outputs: list[dict[str, Any]]
    saved: list[str]
    error: str | None
    batch: str | None = None
    item: int | None = None
    fingerprint: str | None = None

    def __repr__(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.created))
        return f"<JournalEntry {when} {self.model} id={self.task_id} {self.status}>"


class JournalList(list[JournalEntry]):
    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self._repr_mimebundle_()["text/plain"])  # not IPython's plain-list printing

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return _render.journal_bundle(self)


class Journal:
    """The journal's table, written from the package's loop and read from any thread.

    Each thread keeps one connection per database file: opening one per write cost about 1 ms on
    the event loop, several times per task (measured by `benchmarks/bench_finish.py`). WAL with
    `synchronous=NORMAL` keeps every committed row through a crash or a `kill -9` of this process
    (only a power cut may lose the last ones), which is what resuming a batch relies on.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self._path = Path(path) if path else None
        self._ready: Path | None = None
        self._local = threading.local()

    @property
    def path(self) -> Path:
        """The explicit path, or `$WIRO_HOME/journal.sqlite3` as the environment says now."""
        return self._path or wiro_home() / "journal.sqlite3"

    def _connect(self) -> sqlite3.Connection:
        if self._ready != self.path:
            _private_file(self.path)
            with contextlib.closing(sqlite3.connect(self.path, timeout=10)) as setup:
                setup.execute("PRAGMA journal_mode=WAL")
                setup.executescript(SCHEMA)
                _migrate(setup)
                setup.executescript(INDEXES)
                setup.commit()
            self._ready = self.path
        connections: dict[Path, sqlite3.Connection] = self._local.__dict__.setdefault("connections", {})
        db = connections.get(self.path)
        if db is None:
            db = sqlite3.connect(self.path, timeout=10)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA synchronous=NORMAL")
            connections[self.path] = db
        return db

    def _write(self, sql: str, args: tuple[Any, ...]) -> int:
        db = self._connect()
        with db:  # one transaction, committed here
            cursor = db.execute(sql, args)
        return int(cursor.lastrowid or 0)

    def begin(
        self,
        model: str,
        parameters: dict[str, Any],
        api_url: str,
        batch: str | None = None,
        *,
        item: int | None = None,
        fingerprint: str | None = None,
    ) -> int:
        now = time.time()
        return self._write(
            "INSERT INTO tasks (model, parameters, api_url, status, created, updated, batch, item, fingerprint) "
            "VALUES (?,?,?,?,?,?,?,?,?)",
            (model, json.dumps(parameters, default=str), api_url, "submitting", now, now, batch, item, fingerprint),
        )

    def submitted(self, rowid: int, task_id: str, token: str) -> None:
        self._write(
            "UPDATE tasks SET task_id=?, token=?, status=?, updated=? WHERE rowid=?",
            (task_id, token, "task_queue", time.time(), rowid),
        )

    def failed_to_submit(self, rowid: int, error: str, *, maybe_submitted: bool = False) -> None:
        # `submit_unknown`: the Run request may have started a (paid) task; look before running it again.
        status = "submit_unknown" if maybe_submitted else "not_submitted"
        self._write("UPDATE tasks SET status=?, error=?, updated=? WHERE rowid=?", (status, error, time.time(), rowid))

    def update(self, token: str, *, status: str, outputs: list[dict[str, Any]] | None = None, error: str | None = None) -> None:
        if outputs is None:
            self._write("UPDATE tasks SET status=?, error=?, updated=? WHERE token=?", (status, error, time.time(), token))
        else:
            self._write(
                "UPDATE tasks SET status=?, outputs=?, error=?, updated=? WHERE token=?",
                (status, json.dumps(outputs, default=str), error, time.time(), token),
            )

    def saved(self, token: str, paths: list[str]) -> None:
        entry = self.find(token)
        merged = list(dict.fromkeys((entry.saved if entry else []) + paths))
        self._write("UPDATE tasks SET saved=?, updated=? WHERE token=?", (json.dumps(merged), time.time(), token))

    def find(self, id_or_token: str) -> JournalEntry | None:
        db = self._connect()
        row = db.execute(
            "SELECT * FROM tasks WHERE task_id=? OR token=? ORDER BY rowid DESC LIMIT 1", (id_or_token, id_or_token)
        ).fetchone()
        return _entry(row) if row else None

    def batch_rows(self, batch: str, api_url: str) -> list[JournalEntry]:
        """Every row of a batch run against `api_url` (all attempts of all items), oldest first."""
        db = self._connect()
        rows = db.execute(
            "SELECT * FROM tasks WHERE batch=? AND api_url=? ORDER BY rowid", (batch, api_url.rstrip("/"))
        ).fetchall()
        return [_entry(r) for r in rows]

    def reusable(self, fingerprint: str, api_url: str) -> JournalEntry | None:
        """The newest task of an identical request that finished without an error, run against `api_url`."""
        db = self._connect()
        row = db.execute(
            "SELECT * FROM tasks WHERE fingerprint=? AND api_url=? AND status='task_postprocess_end' "
            "AND error IS NULL AND token IS NOT NULL ORDER BY rowid DESC LIMIT 1",
            (fingerprint, api_url.rstrip("/")),
        ).fetchone()
        return _entry(row) if row else None

    def task_ids(self, model: str, api_url: str) -> set[str]:
        """The ids of every task of `model` this journal knows at `api_url` (tasks that are spoken for)."""
        db = self._connect()
        rows = db.execute(
            "SELECT task_id FROM tasks WHERE model=? AND api_url=? AND task_id IS NOT NULL AND task_id != ''",
            (model, api_url.rstrip("/")),
        ).fetchall()
        return {str(r[0]) for r in rows}

    def recent(self, limit: int = 20, *, model: str | None = None, batch: str | None = None) -> JournalList:
        sql, args = "SELECT * FROM tasks", []
        where = []
        if model:
            where.append("model=?")
            args.append(model)
        if batch:
            where.append("batch=?")
            args.append(batch)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY rowid DESC LIMIT ?"
        args.append(str(limit))
        db = self._connect()
        rows = db.execute(sql, args).fetchall()
        return JournalList(_entry(r) for r in rows)


def _migrate(db: sqlite3.Connection) -> None:
    """Add the columns an older journal lacks (another process may be doing the same right now)."""
    present = {row[1] for row in db.execute("PRAGMA table_info(tasks)")}
    for name, kind in ADDED_COLUMNS:
        if name not in present:
            try:
                db.execute(f"ALTER TABLE tasks ADD COLUMN {name} {kind}")
            except sqlite3.OperationalError as exc:
                if "duplicate column" not in str(exc).lower():
                    raise


def _entry(row: sqlite3.Row) -> JournalEntry:
    # By name: the column order of a migrated journal is not the order of a new one's.
    return JournalEntry(
        rowid=row["rowid"],
        task_id=row["task_id"],
        token=row["token"],
        model=row["model"],
        parameters=json.loads(row["parameters"]),
        api_url=row["api_url"],
        status=row["status"],
        created=row["created"],
        updated=row["updated"],
        outputs=json.loads(row["outputs"]),
        saved=json.loads(row["saved"]),
        error=row["error"],
        batch=row["batch"],
        item=row["item"],
        fingerprint=row["fingerprint"],
    )
