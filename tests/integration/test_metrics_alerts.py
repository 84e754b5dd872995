"""The alert rules in deploy/prometheus pass ``promtool test rules`` (series that fire and series
that must not, in ``alerts_test.yml``).

promtool is found on PATH, else installed with apt-get (Debian's ``prometheus`` package ships it)
when this runs as root; when it cannot be had the test is skipped saying why (no registry this
suite may use offers a promtool binary)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
#: Seconds an apt-get step may take (the mirror may be slow or unreachable).
APT_TIMEOUT = float(os.environ.get("RC_PROMTOOL_APT_TIMEOUT", "600"))


def _install_promtool() -> str:
    """Install Debian's ``prometheus`` package; returns why it could not be ("" when it was)."""
    if shutil.which("apt-get") is None:
        return "promtool is not on PATH and there is no apt-get to install it (Debian: prometheus)"
    if os.geteuid() != 0:
        return "promtool is not on PATH and installing it (apt-get install prometheus) needs root"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for step in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "prometheus"],
    ):
        try:
            done = subprocess.run(
                step, capture_output=True, text=True, timeout=APT_TIMEOUT, env=env, check=False
            )
        except subprocess.TimeoutExpired:
            return f"promtool is not on PATH and `{' '.join(step)}` did not finish in {APT_TIMEOUT} s"
        if done.returncode != 0:
            return f"promtool is not on PATH and `{' '.join(step)}` failed: {done.stderr.strip()[-300:]}"
    return "" if shutil.which("promtool") else "apt-get installed prometheus but promtool is not on PATH"


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        why = _install_promtool()
        if why:
            print(f"SKIPPED: {why}")
            pytest.skip(why)
        found = shutil.which("promtool")
    assert found is not None
    return found


def test_the_alert_rules_are_valid(promtool: str) -> None:
    checked = subprocess.run(
        [promtool, "check", "rules", str(RULES / "alerts.yml")], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 7 rules found" in checked.stdout


def test_the_alerts_fire_on_their_series_and_stay_quiet_on_the_others(promtool: str) -> None:
    tested = subprocess.run(
        [promtool, "test", "rules", "alerts_test.yml"],
        cwd=RULES,
        capture_output=True,
        text=True,
        check=False,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout
