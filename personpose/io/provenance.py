"""What every results file records: package versions, git commit, and a config without secrets."""

from __future__ import annotations

import platform
import re
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

_PACKAGES = (
    "personpose",
    "torch",
    "torchvision",
    "lightning",
    "hydra-core",
    "omegaconf",
    "torchmetrics",
    "lpips",
    "numpy",
    "scikit-image",
    "wandb",
    "ai-edge-litert",
)
SECRET_KEY = re.compile(r"(api[_-]?key|token|secret|password|passwd|credential)", re.IGNORECASE)
# ``key: value`` / ``key=value`` lines with a secret-looking key
SECRET_LINE = re.compile(
    rf"^(?P<head>.*?{SECRET_KEY.pattern}[\w.-]*\s*[:=]\s*)(?P<value>\S.*)$", re.IGNORECASE
)
REDACTED = "***redacted***"


def versions() -> dict[str, str | None]:
    """Python, installed versions of the packages that shape results, and the git commit."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    out["git_commit"] = git_commit()
    return out


def git_commit(repo: Path | None = None) -> str | None:
    """The commit of the source checkout (with ``-dirty`` if modified), or None outside git."""
    repo = repo or Path(__file__).resolve().parents[2]

    def git(*args: str) -> str:
        run = subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=5, check=True
        )
        return run.stdout.strip()

    try:
        sha, dirty = git("rev-parse", "HEAD"), git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return sha + ("-dirty" if dirty else "")


def redact(obj: Any) -> Any:
    """A copy of a nested dict/list with the values of secret-looking keys replaced."""
    if isinstance(obj, dict):
        return {
            k: (REDACTED if SECRET_KEY.search(str(k)) and v not in (None, "") else redact(v))
            for k, v in obj.items()
        }
    if isinstance(obj, list | tuple):
        return [redact(v) for v in obj]
    return obj


def scrub_file(path: Path) -> None:
    """Redact ``key: value`` / ``key=value`` lines with secret-looking keys in a text file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    new = [SECRET_LINE.sub(lambda m: m.group("head") + REDACTED, ln) for ln in lines]
    if new != lines:
        path.write_text("\n".join(new) + "\n", encoding="utf-8")
