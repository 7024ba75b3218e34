"""Response parameters (temperature, top_p, max_tokens, ...): their ranges and parsing.

The same rules check the settings form of a conversation and the REGOLO_* defaults read
from the environment at startup. A parameter left blank is not sent at all, so the
upstream's own default applies. Knows nothing of Flask.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_STOP_SEQUENCES = 4
MAX_STOP_CHARS = 100
STOP = "stop"
# How hard a reasoning model thinks; sent only when chosen.
REASONING_EFFORT = "reasoning_effort"
REASONING_EFFORTS = ("low", "medium", "high")
# Regolo (LiteLLM) answers with another model when the one asked for is unavailable,
# unless the request says "disable_fallbacks": true; sent only when chosen.
NO_FALLBACKS = "disable_fallbacks"


@dataclass(frozen=True)
class Number:
    """A numeric parameter: its API (and form field) name, label and allowed range."""

    name: str
    label: str
    minimum: int | float
    maximum: int | float
    whole: bool = False

    @property
    def env(self) -> str:
        """The environment variable holding its default, e.g. REGOLO_TOP_P."""
        return "REGOLO_" + self.name.upper()

    @property
    def range_text(self) -> str:
        if self.name == "seed":
            return "any whole number"
        return f"{self.minimum:,} to {self.maximum:,}"

    def parse(self, raw: str) -> int | float | None:
        """The value typed, None when blank; ValueError with a sentence otherwise."""
        text = raw.strip()
        if not text:
            return None
        kind = "a whole number" if self.whole else "a number"
        try:
            value = int(text) if self.whole else float(text)
        except ValueError:
            raise ValueError(f"{self.label} must be {kind}, not “{text[:40]}”.") from None
        if not math.isfinite(value) or not self.minimum <= value <= self.maximum:
            raise ValueError(f"{self.label} must be {kind} from {self.minimum:,} to "
                             f"{self.maximum:,}.")
        return value


NUMBERS = (
    Number("temperature", "Temperature", 0, 2),
    Number("top_p", "Top p", 0, 1),
    Number("max_tokens", "Max tokens", 1, 1_000_000, whole=True),
    Number("presence_penalty", "Presence penalty", -2, 2),
    Number("frequency_penalty", "Frequency penalty", -2, 2),
    Number("seed", "Seed", -(2**63), 2**63 - 1, whole=True),
)
FIELD_NAMES = tuple(number.name for number in NUMBERS) + (STOP, REASONING_EFFORT,
                                                         NO_FALLBACKS)


def parse_stop(raw: str) -> list[str] | None:
    """Stop sequences, one per line (blank lines ignored); None when there are none."""
    sequences = [line for line in raw.replace("\r\n", "\n").split("\n") if line.strip()]
    if len(sequences) > MAX_STOP_SEQUENCES:
        raise ValueError(f"At most {MAX_STOP_SEQUENCES} stop sequences, one per line "
                         f"(there are {len(sequences)}).")
    if any(len(sequence) > MAX_STOP_CHARS for sequence in sequences):
        raise ValueError(f"A stop sequence can be at most {MAX_STOP_CHARS} characters long.")
    return sequences or None


def parse_effort(raw: str) -> str | None:
    """A reasoning effort (low, medium, high); None when blank."""
    text = raw.strip().lower()
    if text and text not in REASONING_EFFORTS:
        raise ValueError("Reasoning effort must be low, medium or high.")
    return text or None


def parse_no_fallbacks(raw: str) -> bool | None:
    """The checkbox "don't substitute another model": True when ticked, else not sent."""
    return True if raw.strip() else None


@dataclass
class ParamsForm:
    """The settings as typed (to show them again), the errors per field, the values."""

    raw: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def numbers(self) -> tuple[Number, ...]:
        return NUMBERS

    @property
    def efforts(self) -> tuple[str, ...]:
        return REASONING_EFFORTS


def parse(form: Mapping[str, str]) -> ParamsForm:
    """Check every field of a settings form; values holds only the parameters set."""
    result = ParamsForm(raw={name: form.get(name) or "" for name in FIELD_NAMES})
    parsers = {number.name: number.parse for number in NUMBERS} | {
        STOP: parse_stop, REASONING_EFFORT: parse_effort, NO_FALLBACKS: parse_no_fallbacks}
    for name, parser in parsers.items():
        try:
            value = parser(result.raw[name])
        except ValueError as error:
            result.errors[name] = str(error)
            continue
        if value is not None:
            result.values[name] = value
    return result


def form_for(values: Mapping[str, Any]) -> ParamsForm:
    """The form showing stored values."""
    raw = {name: "" if values.get(name) is None else str(values[name])
           for name in FIELD_NAMES}
    raw[STOP] = "\n".join(values.get(STOP) or [])
    raw[NO_FALLBACKS] = "1" if values.get(NO_FALLBACKS) else ""
    return ParamsForm(raw=raw, values=dict(values))


def present_in(form: Mapping[str, str]) -> bool:
    """Whether a submitted form carries the settings fields at all."""
    return any(name in form for name in FIELD_NAMES)


def from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """The default parameters from REGOLO_TEMPERATURE, REGOLO_TOP_P, ...

    Raises ValueError naming the variable when one is malformed or out of range.
    """
    defaults: dict[str, Any] = {}
    for number in NUMBERS:
        try:
            value = number.parse(environ.get(number.env, ""))
        except ValueError as error:
            raise ValueError(f"{number.env}: {error}") from None
        if value is not None:
            defaults[number.name] = value
    return defaults


def effective(stored: Mapping[str, Any] | None, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """What is sent: a conversation's saved settings, or the defaults if it has none."""
    return dict(defaults if stored is None else stored)
