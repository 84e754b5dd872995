"""Settings come from flags over environment over defaults; outcomes are three-valued."""

from __future__ import annotations

import enum
from dataclasses import dataclass

import grpc
import pytest

from rc_common.outcomes import Done, Rejected, Unknown, call
from rc_common.settings import InvalidSetting, group, parse_settings, require_positive, setting


@dataclass(frozen=True)
class Sample:
    listen: str = setting("127.0.0.1:1", env="SAMPLE_LISTEN", help="where")
    interval: float = setting(600.0, env="SAMPLE_INTERVAL", help="seconds")
    schedule: tuple[float, ...] = setting((15.0, 30.0), env="SAMPLE_SCHEDULE", help="gaps")
    enabled: bool = setting(True, env="SAMPLE_ENABLED", help="on/off")


def test_flag_beats_environment_beats_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_settings(Sample, [], prog="t", description="").interval == 600.0
    monkeypatch.setenv("SAMPLE_INTERVAL", "2.5")
    assert parse_settings(Sample, [], prog="t", description="").interval == 2.5
    parsed = parse_settings(Sample, ["--interval", "0.1"], prog="t", description="")
    assert parsed.interval == 0.1


def test_lists_and_booleans_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMPLE_ENABLED", "no")
    parsed = parse_settings(Sample, ["--schedule", "1,1,2"], prog="t", description="")
    assert parsed.schedule == (1.0, 1.0, 2.0)
    assert parsed.enabled is False


def test_bad_value_exits_with_usage_naming_the_source(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SAMPLE_INTERVAL", "soon")
    with pytest.raises(SystemExit) as exited:
        parse_settings(Sample, [], prog="t", description="")
    assert exited.value.code == 2
    assert "SAMPLE_INTERVAL" in capsys.readouterr().err


def test_help_documents_flag_environment_variable_and_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_settings(Sample, ["--help"], prog="t", description="")
    out = capsys.readouterr().out
    assert "--interval" in out and "SAMPLE_INTERVAL" in out and "600.0" in out


class Mode(enum.StrEnum):
    FAST = "fast"
    SAFE = "safe"


@dataclass(frozen=True)
class Retry:
    attempts: int = setting(3, env="SAMPLE_RETRY_ATTEMPTS", help="tries")
    hold: float = setting(60.0, env="SAMPLE_HOLD", flag="hold", help="seconds")
    mode: Mode = setting(Mode.SAFE, env="SAMPLE_MODE", flag="mode", help="how")

    def validate(self) -> None:
        require_positive(self, "attempts")
        if self.hold < 0:
            raise InvalidSetting("hold", "must not be negative")


@dataclass(frozen=True)
class Grouped:
    listen: str = setting("127.0.0.1:1", env="SAMPLE_LISTEN", help="where")
    retry: Retry = group(Retry, prefix="retry", title="retries")


def test_a_group_keeps_flat_flags_prefixed_or_named_and_its_own_defaults() -> None:
    assert parse_settings(Grouped, [], prog="t", description="").retry == Retry()
    parsed = parse_settings(
        Grouped, ["--retry-attempts", "5", "--hold", "1.5", "--mode", "FAST"], prog="t", description=""
    )
    assert parsed.retry == Retry(attempts=5, hold=1.5, mode=Mode.FAST)
    assert parsed.retry.mode is Mode.FAST


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--retry-attempts", "0"], "--retry-attempts: must be positive"),
        (["--hold", "-1"], "--hold: must not be negative"),
        (["--mode", "reckless"], "--mode: must be one of fast, safe"),
    ],
)
def test_a_refused_group_value_names_its_flag(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parse_settings(Grouped, argv, prog="t", description="")
    assert named in capsys.readouterr().err


def test_help_lists_an_enum_setting_s_choices_under_its_group(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_settings(Grouped, ["--help"], prog="t", description="")
    out = capsys.readouterr().out
    assert "retries:" in out and "{fast, safe}" in out and "(default: safe)" in out


class FakeRpcError(grpc.aio.AioRpcError):
    def __init__(self, code: grpc.StatusCode) -> None:
        super().__init__(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details="x")


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    ],
)
async def test_transport_failures_are_unknown_never_refusals(code: grpc.StatusCode) -> None:
    async def failing() -> None:
        raise FakeRpcError(code)

    outcome = await call(failing())
    assert isinstance(outcome, Unknown)
    assert outcome.code == code.name


@pytest.mark.parametrize(
    "code", [grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT]
)
async def test_business_answers_are_definitive_refusals(code: grpc.StatusCode) -> None:
    async def refusing() -> None:
        raise FakeRpcError(code)

    outcome = await call(refusing())
    assert isinstance(outcome, Rejected)


async def test_an_answer_is_done() -> None:
    async def answer() -> int:
        return 7

    outcome = await call(answer())
    assert isinstance(outcome, Done) and outcome.value == 7


def test_timestamps_match_protobufs_own_conversion() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    from google.protobuf import timestamp_pb2

    from rc_common.timestamps import to_timestamp

    for moment in (
        datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC),  # before the epoch
        datetime(2026, 1, 1, 8, 0, tzinfo=timezone(timedelta(hours=8))),
        datetime(2026, 1, 1, 0, 0),  # naive: UTC
    ):
        expected = timestamp_pb2.Timestamp()
        expected.FromDatetime(moment)
        assert to_timestamp(moment) == expected
    assert to_timestamp(None) is None
