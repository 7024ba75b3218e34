"""The /healthz endpoint a PaaS or load balancer polls: is the app up and its database reachable."""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ..extensions import db
from .gate import public

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@bp.get("/healthz")
@public  # a platform's health check knows no ACCESS_PASSWORD
def healthz():
    """200 {"status": "ok"} after a SELECT 1; 503 with the reason when the database fails."""
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        log.warning("health check: database unreachable: %s", exc)
        status, body = 503, {"status": "error", "error": "database unreachable"}
    else:
        status, body = 200, {"status": "ok"}
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response, status
