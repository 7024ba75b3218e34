"""Settings read from the environment, with safe defaults for local use."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from flask.helpers import get_debug_flag

from .conversations import parameters, pricing

DEFAULT_BASE_URL = "https://api.regolo.ai/v1"
DEFAULT_MODEL = "Llama-3.3-70B-Instruct"


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message says which and how to fix it."""


def database_url(instance_path: str) -> str:
    """The SQLAlchemy URL from DATABASE_URL, or a SQLite file under instance/."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        return "sqlite:///" + str(Path(instance_path) / "regolo-chat.db")
    return normalise_database_url(url)


def normalise_database_url(url: str) -> str:
    """postgres:// and postgresql:// URLs made to use the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def _number(name: str, default: float, minimum: float = 0) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {raw!r}")
    return value


def _flag(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    return raw in {"1", "true", "yes", "on"} if raw else default


def default_params() -> dict[str, Any]:
    """The response parameters sent when a conversation has none of its own."""
    try:
        return parameters.from_environment(os.environ)
    except ValueError as error:
        raise ConfigError(str(error)) from None


def _model_settings(name: str, parse):
    """A per-model setting parsed by `parse`; ConfigError naming it when malformed."""
    try:
        return parse(os.environ.get(name, ""))
    except ValueError as error:
        raise ConfigError(str(error)) from None


def secret_key(instance_path: str, production: bool) -> str:
    """SECRET_KEY from the environment; in development one kept under instance/."""
    key = os.environ.get("SECRET_KEY", "").strip()
    if key:
        return key
    if production:
        raise ConfigError(
            "SECRET_KEY is not set: set it to a long random value, such as the output of "
            "python3 -c 'import secrets; print(secrets.token_hex(32))', and keep it "
            "across deploys."
        )
    path = Path(instance_path) / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _count(name: str, default: int, minimum: int = 0) -> int:
    return int(_number(name, default, minimum))


def is_production(testing: bool) -> bool:
    """Production unless FLASK_DEBUG is on (scripts/run sets it) or the app is under test."""
    return not get_debug_flag() and not testing


def load(instance_path: str, testing: bool = False) -> dict[str, Any]:
    """Every setting of the app, read from the environment."""
    Path(instance_path).mkdir(parents=True, exist_ok=True)
    production = is_production(testing)
    max_images = int(_number("MAX_IMAGES", 4, 0))
    max_image_bytes = int(_number("MAX_IMAGE_BYTES", 10 * 1024 * 1024, 1024))
    max_documents = _count("MAX_DOCUMENTS", 5)
    max_document_bytes = _count("MAX_DOCUMENT_BYTES", 20 * 1024 * 1024, 1024)
    return {
        "PRODUCTION": production,
        "SECRET_KEY": secret_key(instance_path, production),
        "TRUST_PROXY": _count("TRUST_PROXY", 0),
        "ACCESS_PASSWORD": os.environ.get("ACCESS_PASSWORD", ""),
        "RATELIMIT_STORAGE_URI": os.environ.get("RATELIMIT_STORAGE_URI", "").strip()
        or "memory://",
        "MESSAGES_PER_MINUTE_PER_OWNER": _count("MESSAGES_PER_MINUTE_PER_OWNER", 20, 1),
        "MESSAGES_PER_MINUTE_PER_IP": _count("MESSAGES_PER_MINUTE_PER_IP", 60, 1),
        "PASSWORD_TRIES_PER_MINUTE": _count("PASSWORD_TRIES_PER_MINUTE", 5, 1),
        "DEVICE_LINK_TRIES_PER_MINUTE": _count("DEVICE_LINK_TRIES_PER_MINUTE", 10, 1),
        "SQLALCHEMY_DATABASE_URI": database_url(instance_path),
        # Errors name their SQL but not its parameters (owner ids, message text) in logs.
        "SQLALCHEMY_ENGINE_OPTIONS": {"hide_parameters": True},
        "REGOLO_API_KEY": os.environ.get("REGOLO_API_KEY", "").strip(),
        "REGOLO_BASE_URL": os.environ.get("REGOLO_BASE_URL", "").strip().rstrip("/")
        or DEFAULT_BASE_URL,
        "REGOLO_MODEL": os.environ.get("REGOLO_MODEL", "").strip() or DEFAULT_MODEL,
        "REGOLO_CONNECT_TIMEOUT": _number("REGOLO_CONNECT_TIMEOUT", 10.0, 0.1),
        "REGOLO_READ_TIMEOUT": _number("REGOLO_READ_TIMEOUT", 60.0, 0.1),
        "REGOLO_RETRY_BUDGET": _number("REGOLO_RETRY_BUDGET", 30.0, 0),
        "MODELS_CACHE_SECONDS": _number("MODELS_CACHE_SECONDS", 300.0, 0),
        "MODEL_PRICES": _model_settings("MODEL_PRICES", pricing.parse_prices),
        "MODEL_CONTEXT_WINDOWS": _model_settings("MODEL_CONTEXT_WINDOWS",
                                                 pricing.parse_windows),
        # The currency of the prices a server publishes (LiteLLM's are in US dollars).
        "MODEL_INFO_CURRENCY": os.environ.get("MODEL_INFO_CURRENCY", "").strip().upper()
        or "USD",
        "MAX_MESSAGE_CHARS": int(_number("MAX_MESSAGE_CHARS", 100_000, 1)),
        "MAX_TITLE_CHARS": int(_number("MAX_TITLE_CHARS", 200, 1)),
        "MESSAGES_PER_PAGE": _count("MESSAGES_PER_PAGE", 50, 1),
        "MAX_IMAGES": max_images,
        "MAX_IMAGE_BYTES": max_image_bytes,
        # Memory: decoding takes about 5 bytes per pixel, one image at a time by default.
        "MAX_IMAGE_PIXELS": _count("MAX_IMAGE_PIXELS", 24_000_000, 1),
        "IMAGE_DECODES_AT_ONCE": _count("IMAGE_DECODES_AT_ONCE", 1, 1),
        "MAX_STORED_IMAGE_BYTES": _count("MAX_STORED_IMAGE_BYTES", 1024 * 1024, 16 * 1024),
        "MAX_UPSTREAM_IMAGE_BYTES": _count("MAX_UPSTREAM_IMAGE_BYTES", 8 * 1024 * 1024),
        # Documents (webapp/conversations/documents.py): their text is what counts.
        "MAX_DOCUMENTS": max_documents,
        "MAX_DOCUMENT_BYTES": max_document_bytes,
        "MAX_DOCUMENT_CHARS": _count("MAX_DOCUMENT_CHARS", 400_000, 1),
        "MAX_DOCUMENT_CHARS_PER_MESSAGE": _count("MAX_DOCUMENT_CHARS_PER_MESSAGE", 500_000, 1),
        "DOCUMENT_READ_SECONDS": _number("DOCUMENT_READ_SECONDS", 30.0, 1),
        "DOCUMENT_READ_MEMORY": _count("DOCUMENT_READ_MEMORY", 512 * 1024 * 1024,
                                       64 * 1024 * 1024),
        "DOCUMENTS_READ_AT_ONCE": _count("DOCUMENTS_READ_AT_ONCE", 1, 1),
        # Room for every image and document at its limit, plus the text and the form's
        # own overhead.
        "MAX_CONTENT_LENGTH": int(_number(
            "MAX_CONTENT_LENGTH", max_images * max_image_bytes
            + max_documents * max_document_bytes + 4 * 1024 * 1024, 1024)),
        "DEFAULT_PARAMS": default_params(),
        "TITLE_GENERATION": _flag("TITLE_GENERATION", default=True),
        "STREAM_FLUSH_SECONDS": _number("STREAM_FLUSH_SECONDS", 0.25, 0.01),
        "STREAM_STALE_SECONDS": _number("STREAM_STALE_SECONDS", 15.0, 1),
        "STREAM_POLL_SECONDS": _number("STREAM_POLL_SECONDS", 0.5, 0.05),
        # Importing chats (webapp/imports): the upload, and what a zip may unpack to.
        "IMPORT_MAX_BYTES": _count("IMPORT_MAX_BYTES", 512 * 1024 * 1024, 1024),
        "IMPORT_MAX_UNCOMPRESSED_BYTES": _count("IMPORT_MAX_UNCOMPRESSED_BYTES",
                                                2 * 1024 * 1024 * 1024, 1024),
        "IMPORT_MAX_ZIP_MEMBERS": _count("IMPORT_MAX_ZIP_MEMBERS", 20_000, 1),
        "IMPORT_MAX_ZIP_RATIO": _count("IMPORT_MAX_ZIP_RATIO", 100, 1),
    }
