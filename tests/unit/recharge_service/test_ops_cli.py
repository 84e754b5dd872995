"""The operator CLI's pieces that need no server: arguments, status names, tables."""

from __future__ import annotations

import argparse
from typing import Any, cast

import pytest

from protos.recharge.v1 import recharge_pb2
from recharge_service.entrypoints.ops_cli import ACTIONS, parser, show_timeline, status_value, table


def test_statuses_are_accepted_the_way_operators_type_them() -> None:
    for text in ("MANUAL_REVIEW", "manual-review", "ORDER_STATUS_MANUAL_REVIEW", " manual_review "):
        assert status_value(text) == recharge_pb2.ORDER_STATUS_MANUAL_REVIEW
    with pytest.raises(argparse.ArgumentTypeError):
        status_value("LOST")


def test_a_table_aligns_columns_and_cuts_long_cells_except_the_last() -> None:
    text = table(("A", "LONG", "LAST"), [("1", "x" * 80, "y" * 80), ("22", "short", "z")])
    header, rule, first, second = text.splitlines()
    assert header.startswith("A   LONG") and set(rule) <= {"-", " "}
    assert "x" * 47 + "…" in first and "x" * 48 not in first
    assert first.endswith("y" * 80)
    assert second.index("short") == header.index("LONG")


def test_resolve_needs_an_action_and_a_reason_and_no_operator_name() -> None:
    cli = parser()
    args = cli.parse_args(["resolve", "R1", "--action", "refund", "--reason", "ticket"])
    assert ACTIONS[args.action] == recharge_pb2.RESOLVE_ACTION_REFUND
    for missing in (["--reason", "r"], ["--action", "refund"]):
        with pytest.raises(SystemExit):
            cli.parse_args(["resolve", "R1", *missing])
    with pytest.raises(SystemExit):
        cli.parse_args(["resolve", "R1", "--action", "shrug", "--reason", "r"])


def test_the_token_and_tls_dir_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECHARGE_OPS_TOKEN_FILE", "/run/ops.token")
    monkeypatch.setenv("RECHARGE_OPS_TLS_DIR", "/etc/rc/ops")
    args = parser().parse_args(["sentinel"])
    assert (args.token_file, args.tls_dir) == ("/run/ops.token", "/etc/rc/ops")
    args = parser().parse_args(["--token-file", "t", "--tls-dir", "d", "sentinel"])
    assert (args.token_file, args.tls_dir) == ("t", "d")


def test_the_target_comes_from_the_environment_unless_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECHARGE_OPS_TARGET", "10.0.0.5:7000")
    assert parser().parse_args(["sentinel"]).target == "10.0.0.5:7000"
    assert parser().parse_args(["--target", "h:1", "sentinel"]).target == "h:1"


class TimelineOnly:
    """A ``RechargeOpsStub`` stand-in that answers GetOrderTimeline with a fixed reply."""

    def __init__(self, *events: recharge_pb2.TimelineEvent) -> None:
        self.reply = recharge_pb2.GetOrderTimelineResponse(order_no="R1", events=events)

    def GetOrderTimeline(self, request: Any, timeout: float) -> recharge_pb2.GetOrderTimelineResponse:
        return self.reply


def test_the_timeline_names_the_replica_that_wrote_each_row() -> None:
    events = [
        recharge_pb2.TimelineEvent(seq=1, kind="transition", actor="system", node="replica-a"),
        recharge_pb2.TimelineEvent(seq=2, kind="sentinel_visit", actor="sentinel", node="replica-b"),
    ]
    args = parser().parse_args(["timeline", "R1"])
    text = show_timeline(cast(Any, TimelineOnly(*events)), args)
    _, header, _, first, second = text.splitlines()
    assert header.split()[:6] == ["SEQ", "AT", "(UTC+8)", "KIND", "ACTOR", "NODE"]
    column = header.index("NODE")
    assert first[column:].startswith("replica-a") and second[column:].startswith("replica-b")
