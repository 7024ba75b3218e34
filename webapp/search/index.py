"""Full-text search over one owner's titles, messages and the documents sent with them
(FTS5 on SQLite, tsvector on PostgreSQL).

The indexes are created by migrations 0004 (titles, messages) and 0011, whose
docstrings say how they are kept up to date. A document that matches is found as its
message, its snippet naming the document (on PostgreSQL, its first 100,000 characters are
searched: see 0011).
What people type is never passed through as search syntax: each word becomes a quoted term
and every term must match, so quotes, `*`, `-`, `NEAR`, `OR` and stray parentheses are
plain text and no query can fail. The database marks matches in snippets with random
sentinels; the snippet's Markdown is taken out, it is escaped whole and only then are the
sentinels turned into <mark> tags, so message text can never inject markup.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import datetime

from markupsafe import Markup, escape
from sqlalchemy import DateTime, text

from ..conversations.models import ACTIVE_STATUSES_SQL
from ..conversations.text import clean_text, plain_markdown
from ..extensions import db

MAX_TERMS = 20
MAX_QUERY_CHARS = 500
RESULT_LIMIT = 50

SQLITE_TITLES = text("""
SELECT c.public_id, highlight(search_titles, 0, :start, :stop) AS marked, c.updated_at
FROM search_titles JOIN conversations c ON c.id = search_titles.rowid
WHERE search_titles MATCH :query AND c.owner_id = :owner
ORDER BY bm25(search_titles), c.updated_at DESC
LIMIT :limit""").columns(updated_at=DateTime)

SQLITE_MESSAGES = text("""
SELECT c.public_id, c.title, m.id, m.role,
       snippet(search_messages, 0, :start, :stop, '…', 24) AS marked, m.created_at,
       m.parent_id
FROM search_messages
JOIN messages m ON m.id = search_messages.rowid
JOIN conversations c ON c.id = m.conversation_id
WHERE search_messages MATCH :query AND c.owner_id = :owner
ORDER BY bm25(search_messages), m.id DESC
LIMIT :limit""").columns(created_at=DateTime)

SQLITE_DOCUMENTS = text("""
SELECT c.public_id, c.title, m.id, m.role,
       snippet(search_documents, 0, :start, :stop, '…', 24) AS marked, m.created_at,
       m.parent_id, d.name
FROM search_documents
JOIN documents d ON d.id = search_documents.rowid
JOIN messages m ON m.id = d.message_id
JOIN conversations c ON c.id = m.conversation_id
WHERE search_documents MATCH :query AND c.owner_id = :owner
ORDER BY bm25(search_documents), d.id DESC
LIMIT :limit""").columns(created_at=DateTime)

# The expressions and the status condition repeat the indexes' own (migration 0004), so
# PostgreSQL can use them.
POSTGRESQL_TITLES = text("""
SELECT c.public_id, ts_headline('simple', c.title, q, :all_options) AS marked, c.updated_at
FROM conversations c, websearch_to_tsquery('simple', :query) q
WHERE to_tsvector('simple'::regconfig, c.title) @@ q AND c.owner_id = :owner
ORDER BY ts_rank(to_tsvector('simple'::regconfig, c.title), q) DESC, c.updated_at DESC
LIMIT :limit""").columns(updated_at=DateTime)

POSTGRESQL_MESSAGES = text(f"""
SELECT c.public_id, c.title, m.id, m.role,
       ts_headline('simple', m.content, q, :options) AS marked, m.created_at, m.parent_id
FROM messages m JOIN conversations c ON c.id = m.conversation_id,
     websearch_to_tsquery('simple', :query) q
WHERE to_tsvector('simple'::regconfig, m.content) @@ q
  AND m.status NOT IN {ACTIVE_STATUSES_SQL} AND c.owner_id = :owner
ORDER BY ts_rank(to_tsvector('simple'::regconfig, m.content), q) DESC, m.id DESC
LIMIT :limit""").columns(created_at=DateTime)


POSTGRESQL_DOCUMENTS = text("""
SELECT c.public_id, c.title, m.id, m.role,
       ts_headline('simple', left(d.text, 100000), q, :options) AS marked, m.created_at,
       m.parent_id, d.name
FROM documents d JOIN messages m ON m.id = d.message_id
     JOIN conversations c ON c.id = m.conversation_id,
     websearch_to_tsquery('simple', :query) q
WHERE to_tsvector('simple'::regconfig, left(d.text, 100000)) @@ q AND c.owner_id = :owner
ORDER BY ts_rank(to_tsvector('simple'::regconfig, left(d.text, 100000)), q) DESC,
         d.id DESC
LIMIT :limit""").columns(created_at=DateTime)


def is_index_object(name: str | None) -> bool:
    """True for the search index's tables and indexes (named search_*): migration 0004
    creates them with SQL of its own, so comparisons with the models leave them out."""
    return (name or "").startswith("search_")


@dataclass(frozen=True)
class Query:
    """What was typed, cleaned, and the words searched for."""

    text: str
    terms: list[str]
    truncated: bool


@dataclass(frozen=True)
class TitleHit:
    public_id: str
    title: Markup
    updated_at: datetime


@dataclass(frozen=True)
class MessageHit:
    """A message found, its snippet in plain text (Markdown taken out) with the name of
    the document it comes from (if it does), and how many other versions of it (siblings
    in its conversation's tree) matched too."""

    public_id: str
    conversation_title: str
    message_id: int
    role: str
    snippet: Markup
    created_at: datetime
    other_versions: int = 0
    document: str | None = None


@dataclass(frozen=True)
class Results:
    titles: list[TitleHit]
    messages: list[MessageHit]


def parse(raw: str | None) -> Query:
    """The words to search for: at most MAX_TERMS, from at most MAX_QUERY_CHARS."""
    cleaned = " ".join(clean_text(raw).split())
    words = cleaned[:MAX_QUERY_CHARS].split()
    return Query(text=cleaned, terms=words[:MAX_TERMS],
                 truncated=len(cleaned) > MAX_QUERY_CHARS or len(words) > MAX_TERMS)


def search(owner_id: str, terms: list[str]) -> Results:
    """The owner's conversations whose title, and messages whose text or one of whose
    documents, hold every term."""
    marks = _Marks.random()
    params = {"owner": owner_id, "limit": RESULT_LIMIT, "start": marks.start,
              "stop": marks.stop}
    dialect = db.session.get_bind().dialect.name
    if dialect == "sqlite":
        params["query"] = " ".join('"' + term.replace('"', '""') + '"' for term in terms)
        titles_sql, messages_sql, documents_sql = SQLITE_TITLES, SQLITE_MESSAGES, SQLITE_DOCUMENTS
    elif dialect == "postgresql":
        params["query"] = " ".join('"' + term.replace('"', " ") + '"' for term in terms)
        selectors = f'StartSel="{marks.start}", StopSel="{marks.stop}"'
        params["all_options"] = f"{selectors}, HighlightAll=true"
        params["options"] = f"{selectors}, MaxWords=30, MinWords=15"
        titles_sql, messages_sql = POSTGRESQL_TITLES, POSTGRESQL_MESSAGES
        documents_sql = POSTGRESQL_DOCUMENTS
    else:
        raise NotImplementedError(f"Search is not implemented for {dialect}.")
    titles = [TitleHit(public_id, marks.to_html(marked), updated_at)
              for public_id, marked, updated_at in db.session.execute(titles_sql, params)]
    message_rows = [(*row, None) for row in db.session.execute(messages_sql, params)]
    document_rows = db.session.execute(documents_sql, params).all()
    return Results(titles=titles, messages=_one_per_message(message_rows + document_rows,
                                                            marks))


def _one_per_message(rows, marks: _Marks) -> list[MessageHit]:
    """One hit per message, best first (a message's own text before its documents):
    versions of a message (same conversation, parent and role) after the best one are
    counted on it rather than listed."""
    hits: dict[tuple, MessageHit] = {}
    seen: set[int] = set()
    for public_id, title, message_id, role, marked, created_at, parent_id, document in rows:
        if message_id in seen:
            continue
        seen.add(message_id)
        key = (public_id, parent_id, role)
        if (best := hits.get(key)) is not None:
            hits[key] = replace(best, other_versions=best.other_versions + 1)
        else:
            hits[key] = MessageHit(public_id, title, message_id, role,
                                   marks.to_html(plain_markdown(marked)), created_at,
                                   document=document)
    return list(hits.values())


@dataclass(frozen=True)
class _Marks:
    """Sentinels around matches, unguessable so no stored text can contain them."""

    start: str
    stop: str

    @classmethod
    def random(cls) -> _Marks:
        token = secrets.token_hex(8)
        return cls(start=f"\ue000{token}\ue001", stop=f"\ue002{token}\ue003")

    def to_html(self, marked: str) -> Markup:
        """The text escaped, then its sentinels made into <mark> tags."""
        return Markup(str(escape(marked)).replace(self.start, "<mark>")
                      .replace(self.stop, "</mark>"))
