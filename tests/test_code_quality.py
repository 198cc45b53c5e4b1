"""Lint and types are part of the suite, so CI refuses what `make lint` would."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

BASE = Path(settings.BASE_DIR)
BIN = Path(sys.executable).parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=BASE, capture_output=True, text=True, timeout=600, env=os.environ.copy())


def test_ruff_finds_nothing_to_fix():
    result = run(str(BIN / "ruff"), "check", ".")

    assert result.returncode == 0, result.stdout


def test_code_is_formatted():
    result = run(str(BIN / "ruff"), "format", "--check", ".")

    assert result.returncode == 0, result.stdout


@pytest.mark.slow
def test_mypy_finds_no_type_errors():
    result = run(str(BIN / "mypy"), ".")

    assert result.returncode == 0, result.stdout
