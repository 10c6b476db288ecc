"""Everything the Space reads from its environment, read once at start-up.

    MODEL_ID             Hub model repo id or local folder (required)
    SPACE_ENGINE         float, bf16 or int8: forces the default engine (default: measured at start-up)
    SPACE_MAX_FILE_MB    upload limits (files.Limits' defaults otherwise)
    SPACE_MAX_ROWS
    SPACE_MAX_CHARS
    SPACE_RETENTION_MINUTES  how long a visitor's uploads and results are kept (60; fractions allowed)
    PORT or GRADIO_SERVER_PORT, GRADIO_SERVER_NAME   where to listen (7860 on 127.0.0.1)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from files import Limits


@dataclass(frozen=True)
class Settings:
    """The Space's settings; `Settings()` is every default (tests and benchmarks build their own)."""

    model_id: str = ""
    engine: str = ""  # empty: the fastest measured at start-up
    limits: Limits = field(default_factory=Limits)
    host: str = "127.0.0.1"
    port: int = 7860
    retention_minutes: float = 60.0  # then every upload, result and Gradio copy of them is deleted

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Read the environment; a malformed number raises ValueError with one sentence naming the variable."""
        default = Limits()

        def number(name: str, fallback: float) -> float:
            raw = environ.get(name, "").strip()
            try:
                value = float(raw) if raw else fallback
            except ValueError:
                raise ValueError(f"{name}={raw!r} is not a number: set it to a positive number or unset it.") from None
            if value <= 0:
                raise ValueError(f"{name}={raw!r} must be positive: set it to a positive number or unset it.")
            return value

        limits = Limits(
            max_bytes=int(number("SPACE_MAX_FILE_MB", default.max_bytes / 2**20) * 2**20),
            max_rows=int(number("SPACE_MAX_ROWS", default.max_rows)),
            max_chars=int(number("SPACE_MAX_CHARS", default.max_chars)),
        )
        port_variable = "PORT" if environ.get("PORT", "").strip() else "GRADIO_SERVER_PORT"
        return cls(
            model_id=environ.get("MODEL_ID", "").strip(),
            engine=environ.get("SPACE_ENGINE", "").strip(),
            limits=limits,
            host=environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
            port=int(number(port_variable, 7860)),
            retention_minutes=number("SPACE_RETENTION_MINUTES", cls.retention_minutes),
        )
