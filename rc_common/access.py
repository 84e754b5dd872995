"""The one server interceptor that enforces ``rc_common.policy`` on every service.

``create_server`` puts ``AccessInterceptor`` first on every server, so no other interceptor (logs,
faults, admission) and no handler runs for a refused call. Per call it works out the caller
(``Principal``): the CN of the peer's verified certificate when the server has TLS, the subject and
roles of a ``authorization: Bearer`` operator token when one is sent, and whether an anonymous peer
is on loopback in development mode. Refusals are UNAUTHENTICATED or PERMISSION_DENIED with an
``ErrorInfo`` reason (AUTHENTICATION_REQUIRED, TOKEN_INVALID, TOKEN_EXPIRED, TOKEN_UNVERIFIABLE,
ROLE_REQUIRED, CALLER_NOT_ALLOWED, METHOD_NOT_IN_POLICY), logged as ``call_refused`` and counted
in ``refusals``. An allowed call's handler sees its caller through ``auth.current_principal()``.
"""

from __future__ import annotations

import collections
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from rc_common.auth import (
    Principal,
    TokenRefused,
    bind_principal,
    load_optional_key,
    unbind_principal,
    verify_token,
)
from rc_common.grpc_status import ERROR_DOMAIN
from rc_common.logs import get_logger
from rc_common.metrics import count_refusal
from rc_common.policy import POLICY, Decision, Rule, decide, rule_for
from rc_common.tls import TlsFiles, is_loopback, load_optional

log = get_logger("access")


@dataclass(frozen=True)
class ServerSecurity:
    """A server's transport and token settings; the default is development mode (plaintext on
    loopback, no token key: every call that needs a token is refused)."""

    tls: TlsFiles | None = None
    auth_key: bytes | None = field(default=None, repr=False)
    policy: dict[str, Rule] = field(default_factory=lambda: POLICY)

    @classmethod
    def from_settings(cls, tls_dir: str, auth_key_file: str) -> ServerSecurity:
        """From a service's ``--tls-dir`` and ``--auth-key-file`` (empty: not configured)."""
        return cls(load_optional(tls_dir), load_optional_key(auth_key_file))


def peer_host(peer: str) -> str:
    """The host of a gRPC peer string (``ipv4:127.0.0.1:5``, ``ipv6:[::1]:5``); "" if unknown."""
    kind, _, rest = peer.partition(":")
    if kind not in ("ipv4", "ipv6"):
        return ""
    return rest.rpartition(":")[0].strip("[]")


class AccessInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, security: ServerSecurity) -> None:
        self._security = security
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}
        #: Refused calls by (method, status code name, reason).
        self.refusals: collections.Counter[tuple[str, str, str]] = collections.Counter()

    async def intercept_service(
        self,
        continuation: Callable[[Any], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        rule = rule_for(method, self._security.policy)
        if handler is None or (rule is not None and rule.open):
            return handler
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._guard(method, handler)
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def principal(self, context: grpc.aio.ServicerContext) -> tuple[Principal, Decision | None]:
        """The caller, and the refusal of a token that does not verify (else None)."""
        service = ""
        if self._security.tls is not None:
            names = (context.auth_context() or {}).get("x509_common_name") or []
            service = names[0].decode("utf-8", "replace") if names else ""
        loopback = self._security.tls is None and is_loopback(peer_host(context.peer() or ""))
        without_token = Principal(service=service, loopback_plaintext=loopback)
        header = next((v for k, v in context.invocation_metadata() or () if k == "authorization"), None)
        if header is None:
            return without_token, None
        # A token that does not verify is refused even where none was needed: never ignored.
        scheme, _, token = str(header).partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return without_token, Decision(False, unauthenticated=True, reason="TOKEN_INVALID")
        if self._security.auth_key is None:
            return without_token, Decision(False, unauthenticated=True, reason="TOKEN_UNVERIFIABLE")
        try:
            subject, roles = verify_token(self._security.auth_key, token.strip())
        except TokenRefused as refused:
            return without_token, Decision(False, unauthenticated=True, reason=refused.reason)
        return Principal(service, subject, roles, loopback), None

    def _guard(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        if handler.unary_unary is None:  # every protected method of ours is unary
            return self._refuse_streaming(method, handler)
        inner = handler.unary_unary

        async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
            principal, refusal = self.principal(context)
            decision = refusal or decide(principal, method, self._security.policy)
            if not decision.allowed:
                await self._refuse(context, method, principal, decision)
            bound = bind_principal(principal)
            try:
                return await inner(request, context)
            finally:
                unbind_principal(bound)

        return grpc.unary_unary_rpc_method_handler(
            guarded,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _refuse_streaming(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        refusal = Decision(False, reason="METHOD_NOT_IN_POLICY")

        async def refuse(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await self._refuse(context, method, self.principal(context)[0], refusal)

        kinds = {
            "unary_stream": grpc.unary_stream_rpc_method_handler,
            "stream_unary": grpc.stream_unary_rpc_method_handler,
            "stream_stream": grpc.stream_stream_rpc_method_handler,
        }
        kind = next(name for name in kinds if getattr(handler, name) is not None)
        return kinds[kind](
            refuse,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    async def _refuse(
        self, context: grpc.aio.ServicerContext, method: str, principal: Principal, decision: Decision
    ) -> None:
        code = code_pb2.UNAUTHENTICATED if decision.unauthenticated else code_pb2.PERMISSION_DENIED
        name = "UNAUTHENTICATED" if decision.unauthenticated else "PERMISSION_DENIED"
        self.refusals[(method, name, decision.reason)] += 1
        count_refusal(method, name, decision.reason)
        log.warning(
            "call_refused",
            method=method,
            code=name,
            reason=decision.reason,
            caller=principal.describe(),
            peer=context.peer(),
        )
        message = (
            f"{method}: authentication required ({decision.reason})"
            if decision.unauthenticated
            else f"{method}: not allowed for {principal.describe()} ({decision.reason})"
        )
        info = error_details_pb2.ErrorInfo(
            reason=decision.reason, domain=ERROR_DOMAIN, metadata={"method": method}
        )
        status = rpc_status.to_status(status_pb2.Status(code=code, message=message, details=[_pack(info)]))
        await context.abort(status.code, status.details, status.trailing_metadata)


def _pack(info: error_details_pb2.ErrorInfo) -> any_pb2.Any:
    detail = any_pb2.Any()
    detail.Pack(info)
    return detail
