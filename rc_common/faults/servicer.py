"""``faults.v1.FaultControl`` over a FaultEngine, and the ``--faults FILE`` loader."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import grpc
from google.protobuf import json_format

from protos.faults.v1 import faults_pb2, faults_pb2_grpc
from rc_common import validation
from rc_common.errors import InvalidArgument
from rc_common.faults.engine import FaultEngine, FaultKind, FaultPlan, FaultRule
from rc_common.grpc_status import maps_errors
from rc_common.logs import get_logger

log = get_logger("faults")


def plan_from_proto(message: faults_pb2.FaultPlan) -> FaultPlan:
    rules = []
    for index, rule in enumerate(message.rules):
        kind = validation.enum_value(f"rules[{index}].kind", FaultKind, rule.kind)
        converted = FaultRule(
            method=validation.text(f"rules[{index}].method", rule.method, maximum=200),
            kind=kind,
            probability=rule.probability or 1.0,
            delay_ms=rule.delay_ms,
            times=rule.times,
        )
        try:
            converted.validate()
        except ValueError as exc:
            field, _, text = str(exc).partition(": ")
            raise InvalidArgument(field.replace("rules", f"rules[{index}]"), text) from exc
        rules.append(converted)
    return FaultPlan(seed=message.seed, rules=tuple(rules))


def load_plan_file(path: str | Path) -> FaultPlan:
    """A profile file: FaultPlan as proto JSON, e.g. {"seed": 7, "rules": [{"method": "*", ...}]}."""
    message = json_format.Parse(Path(path).read_text(), faults_pb2.FaultPlan())
    return plan_from_proto(message)


def rule_to_proto(rule: FaultRule) -> faults_pb2.FaultRule:
    return faults_pb2.FaultRule(
        method=rule.method,
        kind=int(rule.kind),  # type: ignore[arg-type]
        probability=rule.probability,
        delay_ms=rule.delay_ms,
        times=rule.times,
    )


def plan_to_json(plan: FaultPlan) -> str:
    message = faults_pb2.FaultPlan(seed=plan.seed, rules=[rule_to_proto(r) for r in plan.rules])
    return json.dumps(json_format.MessageToDict(message))


class FaultControlServicer(faults_pb2_grpc.FaultControlServicer):
    def __init__(self, engine: FaultEngine) -> None:
        self._engine = engine

    def _stats(self) -> faults_pb2.FaultStats:
        snapshot = self._engine.stats()
        return faults_pb2.FaultStats(
            seed=snapshot.seed,
            rules=[rule_to_proto(r) for r in snapshot.rules],
            counts=[
                faults_pb2.FaultCount(method=method, kind=int(kind), count=count)  # type: ignore[arg-type]
                for (method, kind), count in sorted(snapshot.counts.items())
            ],
            total=snapshot.total,
        )

    @maps_errors
    async def SetFaults(
        self, request: faults_pb2.FaultPlan, context: grpc.aio.ServicerContext
    ) -> faults_pb2.FaultStats:
        plan = plan_from_proto(request)
        self._engine.set_plan(plan)
        log.info("faults_set", seed=plan.seed, rules=len(plan.rules))
        return self._stats()

    @maps_errors
    async def ClearFaults(
        self, request: faults_pb2.ClearFaultsRequest, context: grpc.aio.ServicerContext
    ) -> faults_pb2.FaultStats:
        self._engine.clear()
        log.info("faults_cleared")
        return self._stats()

    @maps_errors
    async def GetFaultStats(
        self, request: faults_pb2.GetFaultStatsRequest, context: grpc.aio.ServicerContext
    ) -> faults_pb2.FaultStats:
        return self._stats()


def register_fault_control(engine: FaultEngine) -> Callable[[grpc.aio.Server], str]:
    def register(server: grpc.aio.Server) -> str:
        faults_pb2_grpc.add_FaultControlServicer_to_server(FaultControlServicer(engine), server)
        return str(faults_pb2.DESCRIPTOR.services_by_name["FaultControl"].full_name)

    return register
