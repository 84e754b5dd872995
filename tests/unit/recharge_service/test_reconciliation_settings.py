"""The reconciliation's settings: off by default, a time of day in +08:00, refused when malformed."""

from __future__ import annotations

import pytest

from rc_common.settings import InvalidSetting
from recharge_service.settings import ReconcileSettings, reconcile_time


def test_the_daily_job_is_off_by_default_and_runs_at_ten_in_plus_eight() -> None:
    settings = ReconcileSettings()
    assert (settings.enabled, reconcile_time(settings.at)) == (False, (10, 0))
    assert reconcile_time("00:05") == (0, 5)


@pytest.mark.parametrize("text", ["24:00", "10:60", "10", "ten", "-1:00", "10:5x"])
def test_a_malformed_time_of_day_is_refused(text: str) -> None:
    with pytest.raises(InvalidSetting):
        ReconcileSettings(at=text).validate()
