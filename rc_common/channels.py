"""The one way to open a gRPC channel: mutual TLS when a TLS directory is given, plaintext
otherwise, and an operator token on every call when one is given.

``aio_channel`` for ``grpc.aio`` clients, ``sync_channel`` for blocking ones (the ops CLI);
``ClientAuth`` bundles what a client presents (its TLS files, its token) so scripts and tests pass
one value around; ``ClientAuth.from_dir`` reads what ``scripts.stack`` leaves in a stack's state
directory.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from rc_common.auth import bearer_metadata, read_token_file
from rc_common.tls import TlsFiles, channel_credentials

Options = Sequence[tuple[str, Any]]

#: Under a stack's state directory: the operator token its services accept.
TOKEN_FILE = "ops.token"
#: The environment variable scripts and the ops CLI read a token from.
TOKEN_ENV = "RC_OPS_TOKEN"


@dataclass(frozen=True)
class ClientAuth:
    """What a client presents: TLS files (None: plaintext) and an operator token ("" : none)."""

    tls: TlsFiles | None = None
    token: str = field(default="", repr=False)

    @classmethod
    def from_dir(cls, state_dir: str | Path, *, tls: TlsFiles | None = None) -> ClientAuth:
        """The token a started stack wrote to ``state_dir/ops.token`` (none if there is no file)."""
        path = Path(state_dir) / TOKEN_FILE
        return cls(tls, read_token_file(path) if path.exists() else "")

    @classmethod
    def from_options(cls, tls_dir: str = "", token_file: str = "") -> ClientAuth:
        """From a client's ``--tls-dir`` and ``--token-file`` options, else ``$RC_OPS_TOKEN``."""
        token = read_token_file(token_file) if token_file else os.environ.get(TOKEN_ENV, "").strip()
        return cls(TlsFiles.load(tls_dir) if tls_dir else None, token)


def _with_token(details: Any, token: str, make: Callable[..., Any]) -> Any:
    given = tuple(details.metadata or ())
    if any(key == "authorization" for key, _ in given):
        return details  # a call that names its own caller (a test acting as someone else)
    metadata = (*given, *bearer_metadata(token))
    return make(details.method, details.timeout, metadata, details.credentials, details.wait_for_ready)


class _AioToken(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self, token: str) -> None:
        self._token = token

    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        details = _with_token(client_call_details, self._token, grpc.aio.ClientCallDetails)
        return await continuation(details, request)


@dataclass(frozen=True)
class _SyncDetails(grpc.ClientCallDetails):  # type: ignore[misc]
    method: str
    timeout: float | None
    metadata: Any
    credentials: Any
    wait_for_ready: bool | None


class _SyncToken(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self, token: str) -> None:
        self._token = token

    def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return continuation(_with_token(client_call_details, self._token, _SyncDetails), request)


def aio_channel(target: str, auth: ClientAuth | None = None, *, options: Options = ()) -> grpc.aio.Channel:
    """A ``grpc.aio`` channel to ``target`` presenting ``auth`` (None: plaintext, no token)."""
    auth = auth or ClientAuth()
    interceptors = [_AioToken(auth.token)] if auth.token else None
    if auth.tls is not None:
        return grpc.aio.secure_channel(
            target, channel_credentials(auth.tls), options=list(options), interceptors=interceptors
        )
    return grpc.aio.insecure_channel(target, options=list(options), interceptors=interceptors)


def sync_channel(target: str, auth: ClientAuth | None = None, *, options: Options = ()) -> grpc.Channel:
    """A blocking channel to ``target`` presenting ``auth`` (None: plaintext, no token)."""
    auth = auth or ClientAuth()
    if auth.tls is not None:
        channel = grpc.secure_channel(target, channel_credentials(auth.tls), options=list(options))
    else:
        channel = grpc.insecure_channel(target, options=list(options))
    return grpc.intercept_channel(channel, _SyncToken(auth.token)) if auth.token else channel
