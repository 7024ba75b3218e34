"""The upstream's model list and model info, cached for a few minutes, with fallbacks."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

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
_info_cache: dict[str, tuple[float, dict[str, llm.ModelInfo]]] = {}

T = TypeVar("T")


def _cached(cache: dict[str, tuple[float, T]], fetch: Callable[[], tuple[T, float]]) -> T:
    """The value cached for this upstream while fresh, else fetch()'s value, kept for the
    number of seconds it returns with it."""
    key = current_app.config["REGOLO_BASE_URL"]
    with _lock:
        cached = cache.get(key)
        if cached and cached[0] > time.monotonic():
            return cached[1]
    value, ttl = fetch()
    with _lock:
        cache[key] = (time.monotonic() + ttl, value)
    return value


def model_choices() -> ModelChoices:
    """The upstream's models (cached), the configured default first.

    When the upstream lists models but not REGOLO_MODEL, new conversations use the first
    model it serves instead, and the notice says so.
    """
    return _cached(_cache, _fetch_choices)


def _fetch_choices() -> tuple[ModelChoices, float]:
    config = current_app.config
    default = config["REGOLO_MODEL"]
    client: llm.LLMClient = current_app.extensions["llm"]
    try:
        models = client.list_models()
    except llm.LLMError as exc:
        log.warning("listing models failed: %s (%s)", exc.user_message, exc.log_text())
        return ModelChoices([default], default, f"Only the default model is offered: "
                                                f"{exc.user_message}"), FAILURE_CACHE_SECONDS
    if not models or default in models:
        choices = ModelChoices([default] + [m for m in models if m != default], default)
    else:
        choices = ModelChoices(models, models[0], default_notice=(
            f"REGOLO_MODEL {default} is not served by this server; using {models[0]}."))
    return choices, config["MODELS_CACHE_SECONDS"]


def model_info() -> dict[str, llm.ModelInfo]:
    """What the upstream publishes about its models (cached); empty when it publishes
    nothing or cannot be asked, which loses nothing else."""
    return _cached(_info_cache, _fetch_info)


def _fetch_info() -> tuple[dict[str, llm.ModelInfo], float]:
    client: llm.LLMClient = current_app.extensions["llm"]
    try:
        return client.model_info(), current_app.config["MODELS_CACHE_SECONDS"]
    except llm.NotFound:
        # A server without the endpoint: asked again only as often as the list.
        return {}, current_app.config["MODELS_CACHE_SECONDS"]
    except llm.LLMError as exc:
        log.warning("model info failed: %s (%s)", exc.user_message, exc.log_text())
        return {}, FAILURE_CACHE_SECONDS


def clear_cache() -> None:
    """Forget the cached lists and model info (used when settings change, and by tests)."""
    with _lock:
        _cache.clear()
        _info_cache.clear()
