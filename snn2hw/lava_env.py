"""The Lava environment: a Python 3.10 interpreter that can import lava-nc 0.10.

lava-nc 0.10 breaks on Python 3.11 and pins numpy<2 and networkx<=2.8.7, so snn2hw
never imports Lava itself. It runs emitted Lava programs in a separate interpreter,
chosen in this order (each tried one is named in the error when none works):

1. the current interpreter, if it can import ``lava``;
2. ``SNN2HW_LAVA_PYTHON`` (a path to a Python that has lava-nc installed);
3. the environment that ``snn2hw lava install`` created (default under the user cache).

``snn2hw lava install --netx`` adds lava-dl 0.6 (its ``netx`` loads ``.net`` files), used to
run exported networks through netx's own code. lava-dl pins torch 2.3, which PyPI only has
as a CUDA build (about 4 GB with its libraries; it runs on the CPU), so it is optional.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

from snn2hw.errors import LavaEnvironmentError

LAVA_REQUIREMENT = "lava-nc==0.10.0"
NETX_REQUIREMENT = "lava-dl==0.6.0"
_NETX_PROBE = "import lava.lib.dl.netx.hdf5"          # full import: loads torch (~10 s)
_NETX_FIND = ("import importlib.util, sys; "          # is it there (no torch import)
              "sys.exit(importlib.util.find_spec('lava.lib.dl.netx') is None)")
LAVA_PYTHON = (3, 10)
STAMP = ".snn2hw-lava"
_PROBE = "import sys, lava.magma.core.run_configs; print('%d.%d' % sys.version_info[:2])"


def default_prefix() -> Path:
    """Where `snn2hw lava install` puts the environment unless told otherwise."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "snn2hw" / "lava-0.10-py3.10"


def _env_python(prefix: Path) -> Path:
    return prefix / "bin" / "python"


def runs(python: str | Path, code: str, timeout: float = 120) -> str | None:
    """stdout of ``python -c code`` if it exits 0, else None."""
    try:
        proc = subprocess.run([str(python), "-c", code], check=False, capture_output=True,
                              text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def _has_lava(python: str | Path) -> bool:
    return runs(python, _PROBE) is not None


def find_python310() -> tuple[Path | None, list[str]]:
    """A working Python 3.10 interpreter (PATH, then pyenv), and what was tried."""
    tried: list[str] = []
    candidates: list[str] = []
    on_path = shutil.which("python3.10")
    if on_path:
        candidates.append(on_path)
    pyenv = shutil.which("pyenv")
    if pyenv:
        out = subprocess.run([pyenv, "versions", "--bare"], check=False, capture_output=True,
                             text=True)
        for ver in sorted(out.stdout.split(), reverse=True):
            if ver.startswith("3.10"):
                pre = subprocess.run([pyenv, "prefix", ver], check=False, capture_output=True,
                                     text=True)
                if pre.returncode == 0:
                    candidates.append(str(Path(pre.stdout.strip()) / "bin" / "python3.10"))
    root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    candidates += sorted(glob.glob(f"{root}/versions/3.10*/bin/python3.10"), reverse=True)
    for cand in dict.fromkeys(candidates):
        tried.append(cand)
        if runs(cand, "import sys; assert sys.version_info[:2] == (3, 10)") is not None:
            return Path(cand), tried
    return None, tried


def has_netx(python: str | Path, *, full: bool = False) -> bool:
    """Whether lava-dl's netx is installed (``full``: and imports, which takes ~10 s)."""
    return runs(python, _NETX_PROBE if full else _NETX_FIND, timeout=300) is not None


def _pip(python: Path, requirement: str) -> None:
    cmd = [str(python), "-m", "pip", "install", "-q", requirement]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise LavaEnvironmentError(f"installing {requirement} failed at `{' '.join(cmd)}`: "
                                   f"{last}", hint="Check network access to the package index.")


def install(python: str | Path | None = None, prefix: Path | None = None, *,
            netx: bool = False) -> Path:
    """Create (or reuse) the Lava environment, with lava-dl if ``netx``; return its Python.
    Idempotent."""
    prefix = Path(prefix) if prefix else default_prefix()
    env_python = _install_lava(python, prefix)
    if netx and not has_netx(env_python, full=True):
        _pip(env_python, NETX_REQUIREMENT)
        if not has_netx(env_python, full=True):
            raise LavaEnvironmentError(f"{NETX_REQUIREMENT} installed in {prefix} but "
                                       f"`{_NETX_PROBE}` fails")
        with open(prefix / STAMP, "a") as stamp:
            stamp.write(f"{NETX_REQUIREMENT}\n")
    return env_python


def _install_lava(python: str | Path | None, prefix: Path) -> Path:
    env_python = _env_python(prefix)
    if (prefix / STAMP).exists() and _has_lava(env_python):
        return env_python
    if python is None:
        found, tried = find_python310()
        if found is None:
            raise LavaEnvironmentError(
                "no Python 3.10 interpreter found for the Lava environment (tried: "
                f"{', '.join(tried) or 'python3.10 on PATH, pyenv'})",
                hint="Install Python 3.10 (e.g. `pyenv install 3.10`) or pass "
                     "`snn2hw lava install --python /path/to/python3.10` "
                     "(make: LAVA_PYTHON310=/path/to/python3.10).")
        python = found
    version = runs(python, "import sys; print('%d.%d' % sys.version_info[:2])")
    if version != "3.10":
        raise LavaEnvironmentError(
            f"'{python}' is not a working Python 3.10 (reports {version or 'nothing'}); "
            f"lava-nc 0.10 needs exactly 3.10",
            hint="Pass --python with a Python 3.10 interpreter.")
    if prefix.exists():
        shutil.rmtree(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    cmd = [str(python), "-m", "venv", str(prefix)]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise LavaEnvironmentError(f"creating the Lava environment failed at "
                                   f"`{' '.join(cmd)}`: {last}")
    _pip(env_python, LAVA_REQUIREMENT)
    if not _has_lava(env_python):
        raise LavaEnvironmentError(f"lava-nc installed in {prefix} but `import lava` fails")
    (prefix / STAMP).write_text(f"{LAVA_REQUIREMENT}\npython {python}\n")
    return env_python


def interpreter() -> Path:
    """The Python that will run Lava programs (see module docstring for the order)."""
    tried = []
    if _has_lava(sys.executable):
        return Path(sys.executable)
    tried.append(f"current interpreter {sys.executable} (no lava)")
    explicit = os.environ.get("SNN2HW_LAVA_PYTHON")
    if explicit:
        if _has_lava(explicit):
            return Path(explicit)
        tried.append(f"SNN2HW_LAVA_PYTHON={explicit} (cannot import lava)")
    else:
        tried.append("SNN2HW_LAVA_PYTHON (not set)")
    env_python = _env_python(default_prefix())
    if _has_lava(env_python):
        return env_python
    tried.append(f"{env_python} (missing or broken)")
    raise LavaEnvironmentError("no Lava interpreter: tried " + "; ".join(tried),
                               hint="Run `snn2hw lava install` (or `make lava`).")


def run_script(python: Path, args: list[str], *, timeout: float, what: str,
               hint: str) -> None:
    """Run ``python args...`` (a standalone Lava script); a failure or timeout is a
    LavaEnvironmentError naming ``what`` with the last lines of its stderr."""
    try:
        proc = subprocess.run([str(python), *args], check=False, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        raise LavaEnvironmentError(f"{what} did not finish within {timeout:.0f} s",
                                   hint="Run fewer samples or steps.") from None
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        raise LavaEnvironmentError(f"{what} failed (exit {proc.returncode}) under {python}: "
                                   f"{tail}", hint=hint)


def netx_interpreter() -> Path:
    """The Lava interpreter, checked to import lava-dl's netx."""
    python = interpreter()
    if not has_netx(python):
        raise LavaEnvironmentError(
            f"lava-dl (netx) is not installed in the Lava environment {python}",
            hint="Run `snn2hw lava install --netx` (about 4 GB: lava-dl pins torch 2.3, "
                 "a CUDA build that runs on the CPU), or `make lava-netx`.")
    return python


def describe() -> str:
    """Human-readable status for `snn2hw lava status`."""
    try:
        python = interpreter()
    except LavaEnvironmentError as exc:
        return f"Lava: not available. {exc}"
    netx = (f"{NETX_REQUIREMENT} (netx) installed" if has_netx(python) else
            "lava-dl (netx) not installed: `snn2hw lava install --netx` adds it")
    return f"Lava: {LAVA_REQUIREMENT} via {python}; {netx}"
