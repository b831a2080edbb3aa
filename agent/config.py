"""Where Atelier keeps its files: ATELIER_HOME for what it writes, the models folder it ships."""
from __future__ import annotations

import os
from pathlib import Path


def atelier_home() -> Path:
    """The one folder Atelier writes to on its own: $ATELIER_HOME, else ~/.atelier."""
    home = Path(os.environ.get("ATELIER_HOME") or "~/.atelier").expanduser()
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        from agent.errors import AtelierError

        reason = "it is a file" if home.is_file() else (error.strerror or str(error))
        raise AtelierError(f"ATELIER_HOME {home} cannot be used ({reason}); set ATELIER_HOME "
                           "to a folder you can write to") from None
    return home


def models_dir() -> Path:
    """The shipped models: $ATELIER_MODELS when it names a folder, else models/ at the top of
    the source tree."""
    override = os.environ.get("ATELIER_MODELS")
    if override and not is_model_file(override):
        return Path(override).expanduser()
    return Path(__file__).resolve().parents[1] / "models"


def models_file() -> Path | None:
    """$ATELIER_MODELS when it names a model file (TOML), else None."""
    override = os.environ.get("ATELIER_MODELS")
    return Path(override).expanduser() if override and is_model_file(override) else None


def is_model_file(reference: str | Path) -> bool:
    return Path(reference).suffix.lower() == ".toml"


def debugging() -> bool:
    """ATELIER_DEBUG set (and not 0): show tracebacks of bugs instead of one-line reports."""
    return os.environ.get("ATELIER_DEBUG", "").strip().lower() not in ("", "0", "false", "no")


def llm_call_timeout() -> float:
    """Seconds one LLM call may take: $ATELIER_LLM_TIMEOUT, else the planner's default."""
    from agent.errors import UsageError
    from planners.llm import CALL_TIMEOUT_S

    text = os.environ.get("ATELIER_LLM_TIMEOUT")
    if not text:
        return CALL_TIMEOUT_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds < float("inf"):
        raise UsageError(f"ATELIER_LLM_TIMEOUT={text!r} is not a positive number of seconds; "
                         "set it to, for example, 60")
    return seconds
