"""Imports run as background jobs: the upload kept in a file of the job's own, imported
in a thread (a greenlet under the gevent worker) that does not depend on the browser, its
progress and report written to the import_jobs table, where any worker reads them.

Each conversation is committed as it is imported; the job's row is brought up to date at
most once a second and at the end, so a crash loses nothing the page already called
imported, and importing the file again finishes the work (conversations already there
are not added twice). A job whose row has not moved for STALE_SECONDS was stopped by a
crash or a restart. An owner's reports older than KEPT_DAYS go when they start another.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from flask import Flask
from sqlalchemy import BigInteger, String, delete, select
from sqlalchemy.orm import Mapped, mapped_column

from ..conversations.models import PUBLIC_ID_SHAPE, new_public_id, utcnow
from ..extensions import db
from .report import Outcome, Report
from .save import SaveSettings, stored_text

if TYPE_CHECKING:
    from .source import ZipLimits

UPDATE_SECONDS = 1.0
STALE_SECONDS = 60
KEPT_DAYS = 30  # an owner's older import reports go when they start a new import


class ImportJob(db.Model):
    """One upload being imported, or imported: its progress and its report."""

    __tablename__ = "import_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    owner_id: Mapped[str] = mapped_column(String(64), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    finished: Mapped[bool] = mapped_column(default=False)
    bytes_total: Mapped[int] = mapped_column(BigInteger)
    bytes_read: Mapped[int] = mapped_column(BigInteger, default=0)
    report: Mapped[dict | None] = mapped_column(db.JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<ImportJob {self.public_id[:4]}… finished={self.finished}>"

    @property
    def stopped(self) -> bool:
        """Whether the job died before finishing (its process crashed or restarted)."""
        return not self.finished and utcnow() - self.updated_at > timedelta(
            seconds=STALE_SECONDS)

    @property
    def percent(self) -> int:
        """How much of the file was read, in percent."""
        return min(100, 100 * self.bytes_read // max(self.bytes_total, 1))

    def read_report(self) -> Report:
        """The report so far."""
        saved = self.report or {}
        return Report([Outcome(**outcome) for outcome in saved.get("outcomes", [])],
                      saved.get("problem"))


def owned_job(public_id: str, owner_id: str) -> ImportJob | None:
    """The owner's import job with this id, or None."""
    if not PUBLIC_ID_SHAPE.fullmatch(public_id):
        return None
    return db.session.scalar(select(ImportJob).where(ImportJob.public_id == public_id,
                                                     ImportJob.owner_id == owner_id))


def start(app: Flask, upload, owner_id: str, limits: ZipLimits,
          settings: SaveSettings) -> ImportJob:
    """Keep the upload in a file of the job's own, record the job and start importing it."""
    handle, path = tempfile.mkstemp(prefix="regolo-import-")
    with os.fdopen(handle, "wb") as kept:
        upload.save(kept)
    job = ImportJob(owner_id=owner_id, bytes_total=os.path.getsize(path),
                    filename=stored_text(upload.filename or "export")[:200])
    db.session.execute(delete(ImportJob).where(
        ImportJob.owner_id == owner_id,
        ImportJob.created_at < utcnow() - timedelta(days=KEPT_DAYS)))
    db.session.add(job)
    db.session.commit()
    threading.Thread(target=_work, args=(app, job.id, path, owner_id, limits, settings),
                     daemon=True, name=f"import-{job.id}").start()
    time.sleep(0)
    return job


def _work(app: Flask, job_id: int, path: str, owner_id: str, limits: ZipLimits,
          settings: SaveSettings) -> None:
    """Import the file, keeping the job's row up to date; remove the file at the end."""
    from .run import run  # the parsers and ijson, loaded by the first import only

    try:
        with app.app_context(), open(path, "rb") as file:
            job = db.session.get(ImportJob, job_id)
            last = [0.0]

            def progress(report: Report, force: bool = False) -> None:
                if force or time.monotonic() - last[0] >= UPDATE_SECONDS:
                    last[0] = time.monotonic()
                    job.bytes_read = min(file.tell(), job.bytes_total)
                    job.report = {"outcomes": [asdict(o) for o in report.outcomes],
                                  "problem": report.problem}
                    job.updated_at = utcnow()
                    db.session.commit()

            report = run(file, owner_id, limits, settings, progress)
            job.finished = True
            job.bytes_read = job.bytes_total
            progress(report, force=True)
            db.session.remove()
    finally:
        os.unlink(path)
