"""Models' prices and context windows: the server's model info, else the settings.

A price or window the server publishes (GET /model/info, catalog.py) wins; else
MODEL_PRICES (per million tokens, with a currency) and MODEL_CONTEXT_WINDOWS apply; else
it is unknown, and nothing is shown. A price is never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask import current_app

from .catalog import model_info

PER_MILLION = 1_000_000
_PRICE = re.compile(r"(?P<input>[0-9.]+)\s*/\s*(?P<output>[0-9.]+)\s+(?P<currency>[A-Za-z]{3})")


@dataclass(frozen=True)
class Price:
    """What a model costs per token, in a currency."""

    input_per_token: float
    output_per_token: float
    currency: str


def _entries(raw: str, setting: str) -> list[tuple[str, str]]:
    """The `model=value` entries of a comma-separated setting."""
    entries = []
    for entry in filter(None, (part.strip() for part in raw.split(","))):
        model, equals, value = entry.partition("=")
        if not equals or not model.strip() or not value.strip():
            raise ValueError(f"{setting}: “{entry}” is not model=value.")
        entries.append((model.strip(), value.strip()))
    return entries


def parse_prices(raw: str) -> dict[str, Price]:
    """MODEL_PRICES, e.g. "Llama-3.3-70B-Instruct=0.6/2.4 EUR": input/output per million."""
    prices = {}
    for model, value in _entries(raw, "MODEL_PRICES"):
        match = _PRICE.fullmatch(value)
        try:
            if match is None:
                raise ValueError(value)
            numbers = float(match["input"]), float(match["output"])
        except ValueError:
            raise ValueError(f"MODEL_PRICES: the price of {model} must look like "
                             f"“0.6/2.4 EUR” (input/output per million tokens), "
                             f"not “{value}”.") from None
        prices[model] = Price(numbers[0] / PER_MILLION, numbers[1] / PER_MILLION,
                              match["currency"].upper())
    return prices


def parse_windows(raw: str) -> dict[str, int]:
    """MODEL_CONTEXT_WINDOWS, e.g. "Llama-3.3-70B-Instruct=128000": tokens per model."""
    windows = {}
    for model, value in _entries(raw, "MODEL_CONTEXT_WINDOWS"):
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"MODEL_CONTEXT_WINDOWS: the window of {model} must be a "
                             f"whole number of tokens, not “{value}”.")
        windows[model] = int(value)
    return windows


def known_prices() -> dict[str, Price]:
    """Every model's price that is known: the server's, else MODEL_PRICES."""
    currency = current_app.config["MODEL_INFO_CURRENCY"]
    published = {model: Price(info.input_cost_per_token, info.output_cost_per_token, currency)
                 for model, info in model_info().items()
                 if info.input_cost_per_token is not None
                 and info.output_cost_per_token is not None}
    return current_app.config["MODEL_PRICES"] | published


def window_for(model: str) -> int | None:
    """The model's context window in tokens: the server's, else MODEL_CONTEXT_WINDOWS."""
    info = model_info().get(model)
    if info is not None and info.context_window:
        return info.context_window
    return current_app.config["MODEL_CONTEXT_WINDOWS"].get(model)
