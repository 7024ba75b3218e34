"""Views of the imports blueprint: the upload page and the report of an import."""

from __future__ import annotations

from flask import current_app, request

from ..owner import current_owner_id
from ..web import render_page
from . import bp
from .run import run
from .save import SaveSettings
from .source import ZipLimits

PAGE = "imports/index.html"


@bp.url_value_preprocessor
def allow_large_uploads(endpoint: str | None, values: dict | None) -> None:
    """Let the upload be as large as IMPORT_MAX_BYTES rather than MAX_CONTENT_LENGTH.

    Runs before the app's before_request hooks, the CSRF check among them, which is the
    first to read the form.
    """
    if endpoint == "imports.upload":
        request.max_content_length = current_app.config["IMPORT_MAX_BYTES"]


@bp.get("/import")
def index():
    """The form that uploads an export."""
    return render_page(PAGE)


@bp.post("/import")
def upload():
    """Import every conversation of the uploaded export; show what became of each."""
    upload = request.files.get("export")
    if upload is None or not upload.filename:
        return render_page(PAGE, 422, error="Choose an export file (.json or .zip) first.")
    config = current_app.config
    report = run(upload.stream, current_owner_id(), ZipLimits(
        max_members=config["IMPORT_MAX_ZIP_MEMBERS"],
        max_uncompressed_bytes=config["IMPORT_MAX_UNCOMPRESSED_BYTES"],
        max_ratio=config["IMPORT_MAX_ZIP_RATIO"], max_image_bytes=config["MAX_IMAGE_BYTES"]),
        SaveSettings(default_model=config["REGOLO_MODEL"],
                     max_title_chars=config["MAX_TITLE_CHARS"],
                     max_images=config["MAX_IMAGES"],
                     max_image_bytes=config["MAX_IMAGE_BYTES"],
                     images=current_app.extensions["images"]))
    kept = report.having("imported") or report.having("already")
    status = 422 if report.problem and not kept else 200
    return render_page(PAGE, status, report=report, filename=upload.filename)


@bp.errorhandler(413)
def too_large(error):
    """An upload over IMPORT_MAX_BYTES: say the limit."""
    limit = current_app.config["IMPORT_MAX_BYTES"]
    size = f"{limit / 2**20:,.0f} MB" if limit >= 2**20 else f"{limit / 1024:,.0f} KB"
    return render_page(PAGE, 413, error=f"This file is larger than the {size} an "
                                        "import may be. Split it, or ask whoever runs this "
                                        "app to raise IMPORT_MAX_BYTES.")
