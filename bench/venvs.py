"""One virtualenv per competitor, built from the sections of bench/requirements.txt.

Competitors pin incompatible redis-py versions (see requirements.txt), and measuring each
system in its own interpreter also keeps one library's import side effects out of another's
numbers. Conveyor itself runs from the project's own virtualenv.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = Path(__file__).parent / "requirements.txt"
VENVS = ROOT / "var" / "bench-venvs"
SECTION = re.compile(r"^#\s*\[(?P<name>[\w-]+)\]\s*$")


def sections() -> dict[str, list[str]]:
    """``{system: [requirement, ...]}`` from the ``# [system]`` blocks of requirements.txt."""
    out: dict[str, list[str]] = {}
    current: str | None = None
    for line in REQUIREMENTS.read_text().splitlines():
        match = SECTION.match(line.strip())
        if match:
            current = match["name"]
            out[current] = []
        elif line.strip() and not line.lstrip().startswith("#") and current is not None:
            out[current].append(line.strip())
    return out


def python_for(system: str) -> Path | None:
    """The interpreter that runs ``system``: the project's for Conveyor, else its own venv's."""
    if system.startswith("conveyor"):
        return Path(sys.executable)
    path = VENVS / system / "bin" / "python"
    return path if path.exists() else None


def ensure(system: str, *, log: Path | None = None) -> Path:
    """Create the system's virtualenv (once) and return its interpreter; raises on failure."""
    existing = python_for(system)
    if existing is not None:
        return existing
    reqs = sections().get(system)
    if reqs is None:
        raise KeyError(f"no [{system}] section in {REQUIREMENTS}")
    target = VENVS / system
    target.parent.mkdir(parents=True, exist_ok=True)
    out = open(log, "a") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    try:
        subprocess.run([sys.executable, "-m", "venv", str(target)], check=True, stdout=out, stderr=out)
        pip = [str(target / "bin" / "python"), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, *reqs], check=True, stdout=out, stderr=out)
    except subprocess.CalledProcessError:
        # leave no half-built venv that python_for would mistake for a good one
        subprocess.run(["rm", "-rf", str(target)], check=False)
        raise
    finally:
        if log:
            out.close()  # type: ignore[union-attr]
    return target / "bin" / "python"


if __name__ == "__main__":
    for name in sys.argv[1:] or sections():
        print(name, ensure(name, log=ROOT / "var" / "bench-venvs" / "install.log"))
