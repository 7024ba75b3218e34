"""Views of the imports blueprint: the upload page, and an import's progress and report."""

from __future__ import annotations

from flask import abort, current_app, redirect, render_template, request, url_for

from ..web.owner import current_owner_id
from ..web.pages import render_page
from . import bp, jobs
from .save import SaveSettings

PAGE = "imports/index.html"
JOB_PAGE = "imports/job.html"


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
    """Check the file looks like an export, then import it in the background and show
    its progress."""
    from .source import Export, NotAnExport, ZipLimits  # ijson, loaded on first use

    upload = request.files.get("export")
    if upload is None or not upload.filename:
        return render_page(PAGE, 422, error="Choose an export file (.json or .zip) first.")
    config = current_app.config
    limits = ZipLimits(max_members=config["IMPORT_MAX_ZIP_MEMBERS"],
                       max_uncompressed_bytes=config["IMPORT_MAX_UNCOMPRESSED_BYTES"],
                       max_ratio=config["IMPORT_MAX_ZIP_RATIO"],
                       max_image_bytes=config["MAX_IMAGE_BYTES"])
    try:
        Export(upload.stream, limits).check()
    except NotAnExport as problem:
        return render_page(PAGE, 422, error=str(problem))
    job = jobs.start(current_app._get_current_object(), upload, current_owner_id(), limits,
                     SaveSettings(default_model=config["REGOLO_MODEL"],
                                  max_title_chars=config["MAX_TITLE_CHARS"],
                                  max_images=config["MAX_IMAGES"],
                                  max_image_bytes=config["MAX_IMAGE_BYTES"],
                                  images=current_app.extensions["images"],
                                  max_document_chars=config["MAX_DOCUMENT_CHARS"],
                                  max_documents=config["MAX_DOCUMENTS"],
                                  max_document_chars_per_message=config[
                                      "MAX_DOCUMENT_CHARS_PER_MESSAGE"]))
    return redirect(url_for("imports.job", public_id=job.public_id), 303)


@bp.get("/import/<public_id>")
def job(public_id: str):
    """An import's progress, then its report: the page (which refreshes itself without
    script), or for htmx's polling the part that changes."""
    found = jobs.owned_job(public_id, current_owner_id())
    if found is None:
        abort(404, "This import does not exist.")
    if request.htmx:
        return render_template("imports/_job.html", job=found, report=found.read_report())
    return render_page(JOB_PAGE, job=found, report=found.read_report())


@bp.errorhandler(413)
def too_large(error):
    """An upload over IMPORT_MAX_BYTES: say the limit."""
    limit = current_app.config["IMPORT_MAX_BYTES"]
    size = f"{limit / 2**20:,.0f} MB" if limit >= 2**20 else f"{limit / 1024:,.0f} KB"
    return render_page(PAGE, 413, error=f"This file is larger than the {size} an "
                                        "import may be. Split it, or ask whoever runs this "
                                        "app to raise IMPORT_MAX_BYTES.")
