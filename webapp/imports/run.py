"""One import from start to end: the file read as a stream, each conversation parsed,
saved and committed on its own, and a report of what became of each.

A conversation that cannot be read is skipped with its reason and never costs the others;
each one is committed as soon as it is saved, so whatever the report calls imported is
kept even if the file breaks further on. Between conversations the import yields to the
worker's other greenlets.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import IO

import gevent
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ..conversations.text import shortened
from ..extensions import db
from . import formats
from .common import Skipped
from .report import Outcome, Report
from .save import SaveSettings, already_imported, save, stored_text
from .source import BrokenExport, Export, NotAnExport, ZipLimits

log = logging.getLogger(__name__)
NOT_AN_EXPORT = ("This file is not an export this app can read: it holds no conversation "
                 "of ChatGPT, Open WebUI, LibreChat or this app's JSON export.")


def run(stream: IO[bytes], owner_id: str, limits: ZipLimits, settings: SaveSettings,
        progress: Callable[[Report], None] = lambda report: None) -> Report:
    """Import every conversation of the uploaded file for owner_id, calling progress()
    with the report so far after each one."""
    report = Report()
    try:
        export = Export(stream, limits)
        for number, raw in enumerate(export.items(), 1):
            report.outcomes.append(_import_one(raw, number, export, owner_id, settings))
            progress(report)
            # Let the worker's other greenlets run (reply streams, gunicorn's heartbeat,
            # which would otherwise have the worker killed during a long import).
            gevent.sleep(0)
    except (NotAnExport, BrokenExport) as problem:
        report.problem = stored_text(str(problem))  # it may name a file of the zip
    if report.problem is None and not any(
            outcome.reason != formats.NOT_A_CONVERSATION for outcome in report.outcomes):
        report.problem = NOT_AN_EXPORT
    return report


def _import_one(raw, number: int, export: Export, owner_id: str,
                settings: SaveSettings) -> Outcome:
    """Import one conversation and commit it, or say why it was skipped."""
    title = raw.get("title") if isinstance(raw, dict) else None
    label = shortened(stored_text(title), 200) if isinstance(title, str) and title.strip() \
        else f"Conversation {number}"
    try:
        imported = formats.parse(raw, export.find_image)
        found = already_imported(imported, owner_id)
        if found is not None:
            return Outcome(found.title, "already", found.public_id)
        conversation = save(imported, owner_id, settings)
        db.session.commit()
        return Outcome(conversation.title, "imported", conversation.public_id)
    except Skipped as reason:
        db.session.rollback()
        return Outcome(label, "skipped", reason=str(reason))
    except IntegrityError:  # the same file imported at the same time, in another job
        db.session.rollback()
        found = already_imported(imported, owner_id)
        if found is not None:
            return Outcome(found.title, "already", found.public_id)
        log.exception("conversation %d of an import could not be saved", number)
        return Outcome(label, "skipped", reason="It could not be saved.")
    except (LookupError, TypeError, ValueError, AttributeError, SQLAlchemyError):
        db.session.rollback()
        log.exception("conversation %d of an import could not be read", number)
        return Outcome(label, "skipped",
                       reason="Its messages are not in the shape the export format has.")
