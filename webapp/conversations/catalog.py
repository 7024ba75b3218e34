"""The upstream's model list and model info, cached for a few minutes, with fallbacks."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from flask import current_app

from ..upstream import llm

log = logging.getLogger(__name__)

FAILURE_CACHE_SECONDS = 30.0


@dataclass
class ModelChoices:
    """The models to offer and the one new conversations use, with a sentence when the
    list is only the default (`notice`) or the default is not REGOLO_MODEL
    (`default_notice`, for the new-chat page)."""

    models: list[str]
    default: str
    notice: str = ""
    default_notice: str = ""


_lock = threading.Lock()
_cache: dict[str, tuple[float, ModelChoices]] = {}


def model_choices() -> ModelChoices:
    """The upstream's models (cached), the configured default first.

    When the upstream lists models but not REGOLO_MODEL, new conversations use the first
    model it serves instead, and the notice says so.
    """
    config = current_app.config
    key = config["REGOLO_BASE_URL"]
    with _lock:
        cached = _cache.get(key)
        if cached and cached[0] > time.monotonic():
            return cached[1]
    default = config["REGOLO_MODEL"]
    client: llm.LLMClient = current_app.extensions["llm"]
    try:
        models = client.list_models()
        if not models or default in models:
            choices = ModelChoices([default] + [m for m in models if m != default], default)
        else:
            choices = ModelChoices(models, models[0], default_notice=(
                f"REGOLO_MODEL {default} is not served by this server; using {models[0]}."))
        ttl = config["MODELS_CACHE_SECONDS"]
    except llm.LLMError as exc:
        log.warning("listing models failed: %s (%s)", exc.user_message, exc.log_text())
        choices = ModelChoices([default], default, f"Only the default model is offered: "
                                                   f"{exc.user_message}")
        ttl = FAILURE_CACHE_SECONDS
    with _lock:
        _cache[key] = (time.monotonic() + ttl, choices)
    return choices


_info_cache: dict[str, tuple[float, dict[str, llm.ModelInfo]]] = {}


def model_info() -> dict[str, llm.ModelInfo]:
    """What the upstream publishes about its models (cached); empty when it publishes
    nothing or cannot be asked, which loses nothing else."""
    config = current_app.config
    key = config["REGOLO_BASE_URL"]
    with _lock:
        cached = _info_cache.get(key)
        if cached and cached[0] > time.monotonic():
            return cached[1]
    client: llm.LLMClient = current_app.extensions["llm"]
    ttl = config["MODELS_CACHE_SECONDS"]
    try:
        info = client.model_info()
    except llm.NotFound:
        info = {}  # a server without the endpoint: asked again only as often as the list
    except llm.LLMError as exc:
        log.warning("model info failed: %s (%s)", exc.user_message, exc.log_text())
        info, ttl = {}, FAILURE_CACHE_SECONDS
    with _lock:
        _info_cache[key] = (time.monotonic() + ttl, info)
    return info


def clear_cache() -> None:
    """Forget the cached lists and model info (used when settings change, and by tests)."""
    with _lock:
        _cache.clear()
        _info_cache.clear()
