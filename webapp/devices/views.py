"""Views of the devices blueprint: the owner's link page, and the page that uses a link."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for

from ..extensions import db
from ..web.limits import slow_down_sentence, tries_device_links
from ..web.owner import adopt_owner, current_owner_id, existing_owner_id
from ..web.pages import render_page
from . import bp, links


@bp.get("/devices")
def index():
    """Make, or turn off, the link that opens this browser's chats on another device."""
    return render_page("devices/index.html", live=links.live_link(current_owner_id()))


@bp.post("/devices")
def create():
    """Make a new link and show it, this once (only its hash is kept)."""
    token, link = links.create(current_owner_id())
    db.session.commit()
    return render_page("devices/index.html", live=link,
                       url=url_for("devices.use", token=token, _external=True))


@bp.post("/devices/revoke")
def revoke():
    """Turn off the link that still works, if any."""
    links.revoke(current_owner_id())
    db.session.commit()
    return redirect(url_for("devices.index"), 303)


@bp.route("/d/<token>", methods=["GET", "POST"])
@tries_device_links
def use(token: str):
    """Ask, then (on the POST) give this browser the chats of the device that made the link."""
    link = links.find(token)
    problem = links.why_not_usable(link)
    if problem is not None:
        status = 404 if link is None else 410
        return render_template("devices/use.html", problem=problem), status
    browser_owner = existing_owner_id()
    if browser_owner == link.owner_id:
        return render_template("devices/use.html", already_here=True)
    if request.method == "GET":
        return render_template("devices/use.html", token=token,
                               own_chats=links.conversation_count(browser_owner))
    if not links.use(link, browser_owner):
        db.session.rollback()
        return render_template("devices/use.html", problem=links.USED), 410
    adopt_owner(link.owner_id)
    db.session.commit()
    return redirect(url_for("chat.index"), 303)


@bp.errorhandler(429)
def too_many_tries(error):
    """Too many links that do not work: say how long to wait."""
    return render_template("devices/use.html",
                           problem=slow_down_sentence("too many device link tries")), 429
