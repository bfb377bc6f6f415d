"""The task journal: every Run is recorded locally so no paid-for result is lost.

A row is written *before* the Run request is sent (status `submitting`), then
completed with the task id and token as soon as the server answers, and kept
current as the task moves. After a kernel restart or crash,
`wiro_jupyter.tasks()` lists the rows and `recover()` rebuilds a Task from one.

What is stored: model, parameters (file inputs by name and hash only, never
their bytes), ids, status, times, output names/URLs and where they were saved.
Never the API key or secret. SQLite in WAL mode under `$WIRO_HOME` (default
`~/.wiro-jupyter`), one short connection per write, so several kernels may
share it; the batch runner will resume from the same table.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    batch TEXT
);
CREATE INDEX IF NOT EXISTS tasks_task_id ON tasks(task_id);
CREATE INDEX IF NOT EXISTS tasks_token ON tasks(token);
CREATE INDEX IF NOT EXISTS tasks_batch ON tasks(batch);
"""


def wiro_home() -> Path:
    return Path(os.environ.get("WIRO_HOME") or Path.home() / ".wiro-jupyter").expanduser()


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

    def __repr__(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.created))
        return f"<JournalEntry {when} {self.model} id={self.task_id} {self.status}>"


class JournalList(list[JournalEntry]):
    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self._repr_mimebundle_()["text/plain"])  # not IPython's plain-list printing

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        rows, lines = [], []
        for e in self:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.created))
            outs = ", ".join(str(o.get("name")) for o in e.outputs[:4])
            lines.append(f"{when}  {e.task_id or '-':>8}  {e.status:<22} {e.model}  {outs}")
            rows.append(
                f"<tr><td>{when}</td><td>{html.escape(e.task_id or '-')}</td><td>{html.escape(e.model)}</td>"
                f"<td>{html.escape(e.status)}</td><td>{html.escape(outs)}</td>"
                f"<td>{html.escape(', '.join(e.saved[:3]))}</td></tr>"
            )
        head = "<tr><th>when</th><th>id</th><th>model</th><th>status</th><th>outputs</th><th>saved to</th></tr>"
        return {
            "text/plain": "\n".join(lines) or "(no tasks recorded yet)",
            "text/html": f"<table>{head}{''.join(rows)}</table>",
        }


class Journal:
    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self._path = Path(path) if path else None
        self._ready: Path | None = None

    @property
    def path(self) -> Path:
        """The explicit path, or `$WIRO_HOME/journal.sqlite3` as the environment says now."""
        return self._path or wiro_home() / "journal.sqlite3"

    def _connect(self) -> sqlite3.Connection:
        if self._ready != self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.closing(sqlite3.connect(self.path, timeout=10)) as db:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(SCHEMA)
                db.commit()
            with contextlib.suppress(OSError):
                os.chmod(self.path, 0o600)
            self._ready = self.path
        return sqlite3.connect(self.path, timeout=10)

    def _write(self, sql: str, args: tuple[Any, ...]) -> int:
        with contextlib.closing(self._connect()) as db:
            cursor = db.execute(sql, args)
            db.commit()
            return int(cursor.lastrowid or 0)

    def begin(self, model: str, parameters: dict[str, Any], api_url: str, batch: str | None = None) -> int:
        now = time.time()
        return self._write(
            "INSERT INTO tasks (model, parameters, api_url, status, created, updated, batch) VALUES (?,?,?,?,?,?,?)",
            (model, json.dumps(parameters, default=str), api_url, "submitting", now, now, batch),
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
        with contextlib.closing(self._connect()) as db:
            row = db.execute(
                "SELECT * FROM tasks WHERE task_id=? OR token=? ORDER BY rowid DESC LIMIT 1", (id_or_token, id_or_token)
            ).fetchone()
        return _entry(row) if row else None

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
        with contextlib.closing(self._connect()) as db:
            rows = db.execute(sql, args).fetchall()
        return JournalList(_entry(r) for r in rows)


def _entry(row: tuple[Any, ...]) -> JournalEntry:
    rowid, task_id, token, model, params, api_url, status, created, updated, outputs, saved, error, _batch = row
    return JournalEntry(
        rowid=rowid,
        task_id=task_id,
        token=token,
        model=model,
        parameters=json.loads(params),
        api_url=api_url,
        status=status,
        created=created,
        updated=updated,
        outputs=json.loads(outputs),
        saved=json.loads(saved),
        error=error,
    )
