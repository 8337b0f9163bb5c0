"""Backup and restore of the whole database with pg_dump / pg_restore (custom format), with progress.

A custom-format dump is compressed, restorable table by table and in parallel, and carries the
PostGIS extension, the schema, the functions and triggers, and every row (the outbox and histories
included), so a restored service serves the same map and its `riskmap verify` is clean.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

Progress = Callable[[str, int, int], None]

_DUMPING = re.compile(r'dumping contents of table "([^"]+)"')
_RESTORING = re.compile(r'processing data for table "([^"]+)"')


class BackupError(RuntimeError):
    """A backup or restore that could not be done; the message says what to do next."""


@dataclass
class BackupResult:
    path: Path
    tables: int
    bytes: int
    seconds: float


def _tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise BackupError(
            f"{name} is not installed; install the PostgreSQL client"
            " (Debian: apt-get install postgresql-client)"
        )
    return found


def _run(cmd: list[str], pattern: re.Pattern[str], stage: str, total: int, report: Progress) -> int:
    """Run CMD, counting its verbose lines that match PATTERN as progress; the count of matches."""
    done = 0
    report(stage, 0, total)
    tail: list[str] = []
    with subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:
            if pattern.search(line):
                done += 1
                report(stage, min(done, total), total)
            elif "error" in line.lower() or "warning" in line.lower():
                tail.append(line.strip())
        code = proc.wait()
    if code != 0:
        raise BackupError(f"{Path(cmd[0]).name} failed: " + ("; ".join(tail[-5:]) or f"exit code {code}"))
    report(stage, total, total)
    return done


def backup(database_url: str, path: Path, *, progress: Progress | None = None) -> BackupResult:
    """Dump the database at DATABASE_URL to PATH (custom format), replacing PATH only when done."""
    report = progress or (lambda *_: None)
    started = time.perf_counter()
    with psycopg.connect(database_url) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        ).fetchone()[0]
    partial = path.with_name(path.name + ".partial")
    cmd = [_tool("pg_dump"), "--format=custom", "--verbose", f"--file={partial}", f"--dbname={database_url}"]
    try:
        dumped = _run(cmd, _DUMPING, "backup", tables, report)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return BackupResult(path, dumped, path.stat().st_size, time.perf_counter() - started)


def restore(database_url: str, path: Path, *, clean: bool = False, progress: Progress | None = None) -> int:
    """Restore PATH into DATABASE_URL in one transaction; refused into a non-empty database unless CLEAN."""
    report = progress or (lambda *_: None)
    if not path.is_file():
        raise BackupError(f"no backup file at {path}")
    listing = subprocess.run([_tool("pg_restore"), "--list", str(path)], capture_output=True, text=True)
    if listing.returncode != 0:
        raise BackupError(f"{path} is not a gridrisk backup (pg_restore --list: {listing.stderr.strip()})")
    total = sum(1 for line in listing.stdout.splitlines() if " TABLE DATA " in line)
    with psycopg.connect(database_url) as conn:
        occupied = conn.execute("SELECT to_regclass('public.cells') IS NOT NULL").fetchone()[0]
    if occupied and not clean:
        raise BackupError(
            "the target database already holds gridrisk tables; restore into an empty database, "
            "or pass --clean to replace everything in it"
        )
    cmd = [_tool("pg_restore"), "--verbose", "--single-transaction", "--no-owner", "--no-privileges"]
    if clean:
        cmd += ["--clean", "--if-exists"]
    cmd += [f"--dbname={database_url}", str(path)]
    return _run(cmd, _RESTORING, "restore", total, report)
