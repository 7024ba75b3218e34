"""Flask extensions, created once here and bound to the app in create_app."""

from flask_compress import Compress
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from htmx_flask import Htmx
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base whose constraint names are stable across databases."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# Objects stay loaded after a commit: a request that commits and then renders what it
# saved (a send, then its fragment) does not read every row back. Request and thread
# sessions are short-lived; code that needs the database's newer state asks for it.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
htmx = Htmx()
# Compresses pages, fragments and static files, never streamed responses (see create_app).
compress = Compress()
# Every POST needs the session's token: a csrf_token field, or X-CSRFToken from htmx.
csrf = CSRFProtect()
# Limits are declared on views (see webapp/web/limits.py); storage from RATELIMIT_STORAGE_URI.
limiter = Limiter(key_func=get_remote_address)
