"""The README's first command works on a fresh machine: no cluster, no Fastly account."""

from __future__ import annotations

import subprocess
import sys


def test_demo_runs_the_whole_job_and_exits_zero() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fastly_secret_store_operator.cli", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert '"reason": "Synced"' in out
    assert "The store as the Fastly API sees it:" in out
    assert "entry STRIPE_KEY" in out
    assert "The object is gone and the Fastly store is deleted." in out
    assert "sk_test_demo" not in out + result.stderr, "the demo's secret value must not be printed"
