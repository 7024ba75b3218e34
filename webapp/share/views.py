"""Views of the share blueprint: the owner's link controls, the public snapshot, export.

The public pages (/s/...) never touch the session, so viewing a link sets no cookie.
"""

from __future__ import annotations

import json

from flask import Response, abort, redirect, render_template, request, url_for

from ..conversations import export, tree
from ..conversations.models import Conversation, Share
from ..extensions import db
from ..web import gate
from ..web.owner import current_owner_id
from ..web.pages import owned_conversation, render_page
from . import bp, links, snapshot


@bp.after_request
def not_for_search_engines(response: Response) -> Response:
    """No page of this blueprint is indexed, and none leaks its URL to other sites."""
    response.headers["X-Robots-Tag"] = "noindex"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.get("/c/<public_id>/share")
def manage(public_id: str):
    """The share controls of a conversation (create, copy, update, revoke its link)."""
    conversation = owned_conversation(public_id)
    return render_page("share/manage.html", **_panel_data(conversation))


@bp.post("/c/<public_id>/share")
def publish(public_id: str):
    """Create the conversation's link, or re-snapshot it (the link stays the same)."""
    conversation = owned_conversation(public_id)
    links.publish(conversation, include_system_prompt=bool(
        request.form.get("include_system_prompt")),
        include_documents=bool(request.form.get("include_documents")))
    db.session.commit()
    return _after_change(conversation)


@bp.post("/c/<public_id>/share/revoke")
def revoke(public_id: str):
    """Turn the conversation's link off; opening it then says it was removed."""
    conversation = owned_conversation(public_id)
    share = links.live_share(conversation)
    if share is not None:
        links.revoke(share)
        db.session.commit()
    return _after_change(conversation)


@bp.get("/shares")
def index():
    """Every working link of this owner, with open, update and revoke."""
    return render_page("share/index.html", shares=links.owner_shares(current_owner_id()))


@bp.get("/s/<token>")
@gate.public
def public(token: str):
    """The read-only snapshot behind a link: public, server-rendered, not indexed."""
    share = _working_share(token)
    return render_template("share/public.html", share=share, frozen=share.snapshot,
                           messages=snapshot.messages(share.snapshot),
                           description=snapshot.description(share.snapshot))


@bp.get("/s/<token>/documents/<id:message_id>/<int:index>")
@gate.public
def public_document(token: str, message_id: int, index: int):
    """The text of a shared document, when its owner shared the text; else a 404."""
    share = _working_share(token)
    shared = snapshot.document(share.snapshot, message_id, index)
    if shared is None:
        abort(404, "This document's text is not shared.")
    return render_template("share/document.html", share=share, frozen=share.snapshot,
                           document=shared, back_url=url_for("share.public", token=token))


@bp.get("/s/<token>/continue")
def confirm_continue(token: str):
    """Ask before copying a shared conversation into this browser's own list.

    The public page links here, so its own view sets no cookie; this page, loaded as a
    page of its own (with the browser's cookie), holds the form and its CSRF token.
    """
    share = _working_share(token)
    return render_page("share/continue.html", share=share, frozen=share.snapshot)


@bp.post("/s/<token>/continue")
def continue_copy(token: str):
    """Copy a shared conversation into this browser's own list and open it."""
    share = _working_share(token)
    conversation = links.continue_copy(share, current_owner_id())
    db.session.commit()
    return redirect(url_for("chat.show", public_id=conversation.public_id), 303)


@bp.get("/c/<public_id>/export.md")
def export_markdown(public_id: str):
    """Download the conversation as a Markdown file."""
    conversation = owned_conversation(public_id)
    return _download(export.as_markdown(conversation), "text/markdown",
                     export.filename(conversation, "md"))


@bp.get("/c/<public_id>/export.json")
def export_json(public_id: str):
    """Download the conversation as JSON (format regolo-chat/2, see the README)."""
    conversation = owned_conversation(public_id)
    body = json.dumps(export.as_json(conversation), indent=2, ensure_ascii=False)
    return _download(body + "\n", "application/json", export.filename(conversation, "json"))


def _working_share(token: str) -> Share:
    """The share behind a public link: 404 if unknown, 410 if its owner removed it."""
    share = links.by_token(token)
    if share is None:
        abort(404, "There is no shared conversation at this link. Check that it was "
                   "copied in full.")
    if share.revoked_at is not None:
        abort(410, "This shared conversation was removed by its owner.")
    return share


def _after_change(conversation: Conversation):
    """htmx gets the share controls again; a plain form goes back where it came from."""
    if request.form.get("back") == "shares":
        return redirect(url_for("share.index"), 303)
    if request.htmx:
        return render_template("share/_panel.html", **_panel_data(conversation))
    return redirect(url_for("share.manage", public_id=conversation.public_id), 303)


def _panel_data(conversation: Conversation) -> dict:
    """What the share controls show: the link, and which choices the conversation offers."""
    return {"conversation": conversation, "share": links.live_share(conversation),
            "system_prompt": tree.system_prompt(conversation),
            "has_documents": links.has_documents(conversation)}


def _download(body: str, mimetype: str, name: str) -> Response:
    """A response the browser saves as a file named `name`."""
    return Response(body, mimetype=mimetype,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
