"""Where and with what a cell ran: package versions, git commit, device, host, times."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path

import torch

PACKAGES = ("torch", "torchvision", "numpy", "clean-fid", "scikit-image", "open_clip_torch", "cvae-bench")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


COMMIT_VARIABLE = "BENCH_GIT_COMMIT"  # set once per run: worker processes inherit it
FINGERPRINT_VARIABLE = "BENCH_CODE_FINGERPRINT"  # likewise
PACKAGE = Path(__file__).resolve().parents[1]


def pin_code() -> None:
    """Read the commit and the code's fingerprint when a run starts, so every cell of the run records the
    code it started with, even if the checkout moves on while it runs (worker processes, spawned or Ray's,
    inherit the variables)."""
    os.environ.setdefault(COMMIT_VARIABLE, _read_git_commit())
    os.environ.setdefault(FINGERPRINT_VARIABLE, package_fingerprint())


def code_fingerprint() -> str:
    """What a saved training state must have been written by for a run to resume it (training/resume.py)."""
    return os.environ.get(FINGERPRINT_VARIABLE) or package_fingerprint()


def package_fingerprint(package: Path = PACKAGE) -> str:
    """sha256 of the package's files (the code that trains, and its data files such as the keyword tables) and
    the versions of the libraries it runs on. Unlike the git commit, a commit that touches only reports, grids,
    tests or docs keeps it, so a cell in training survives the publishing of other cells."""
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(f"{path.relative_to(package).as_posix()}\0".encode() + path.read_bytes() + b"\0")
    digest.update(json.dumps(package_versions(), sort_keys=True).encode())
    return digest.hexdigest()[:16]


def git_commit() -> str:
    return os.environ.get(COMMIT_VARIABLE) or _read_git_commit()


def _read_git_commit() -> str:
    repo = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    threads = torch.get_num_threads()
    return f"cpu ({platform.processor() or platform.machine()}, {threads} thread{'s' * (threads != 1)})"


def provenance(device: torch.device) -> dict:
    return {
        "packages": package_versions(),
        "git_commit": git_commit(),
        "device": device_name(device),
        "host": socket.gethostname(),
        **({"job": os.environ["BENCH_JOB_ID"]} if "BENCH_JOB_ID" in os.environ else {}),  # a Slurm job's id
    }
