"""The search page: results for people, the same results fragment for htmx."""

from __future__ import annotations

from flask import make_response, render_template, request

from ..web.owner import current_owner_id
from ..web.pages import render_page
from . import bp, index


@bp.get("/search")
def results():
    """Search the owner's conversation titles and messages (GET /search?q=...)."""
    query = index.parse(request.args.get("q"))
    found = index.search(current_owner_id(), query.terms) if query.terms else None
    context = {"search_query": query, "found": found, "max_terms": index.MAX_TERMS}
    if request.htmx and not request.htmx.history_restore_request:
        response = make_response(render_template("search/_results.html", **context))
    else:
        response = make_response(render_page("search/results.html", **context))
    response.vary.add("HX-Request")
    return response
