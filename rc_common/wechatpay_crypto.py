"""WeChat Pay APIv3 cryptography, shared by the simulator (signs, encrypts; verifies merchants'
requests) and the recharge center (verifies, decrypts; signs its requests). Pure functions over
``cryptography``; no gRPC, no I/O.

- Signature: SHA256withRSA, PKCS#1 v1.5, base64, over ``f"{timestamp}\\n{nonce}\\n{body}\\n"``
  (``Wechatpay-Signature``; the platform private key signs, the platform public key verifies).
- Resource: AEAD_AES_256_GCM under the 32-byte APIv3 key, a 12-character nonce, the associated
  data (``transaction`` / ``refund``); ``ciphertext`` is base64 of ciphertext plus the 16-byte tag.
- A notification body is compact JSON ``{id, create_time, resource_type, event_type, summary,
  resource{...}}``, UTF-8; its headers are ``Wechatpay-Timestamp`` (unix seconds),
  ``Wechatpay-Nonce``, ``Wechatpay-Serial`` (the public key id), ``Wechatpay-Signature-Type`` and
  ``Wechatpay-Signature``.

Timestamps are not checked here against a clock (WeChat's Python SDK does not either); use
:func:`timestamp_is_fresh` — merchants must reject a timestamp more than 5 minutes off.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from rc_common.validation import loads_json

SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
ALGORITHM = "AEAD_AES_256_GCM"
RESOURCE_TYPE = "encrypt-resource"
#: WeChat's signature probes carry a signature starting with this; merchants must refuse them.
SIGN_TEST_PREFIX = "WECHATPAY/SIGNTEST/"
#: How far a notification's timestamp may be from the merchant's clock (wechatpay-go's rule).
MAX_TIMESTAMP_SKEW_S = 300

HEADER_TIMESTAMP = "Wechatpay-Timestamp"
HEADER_NONCE = "Wechatpay-Nonce"
HEADER_SERIAL = "Wechatpay-Serial"
HEADER_SIGNATURE = "Wechatpay-Signature"
HEADER_SIGNATURE_TYPE = "Wechatpay-Signature-Type"

_NONCE_ALPHABET = string.ascii_uppercase + string.digits
_RESOURCE_NONCE_ALPHABET = string.ascii_letters + string.digits

PemLike = bytes | str
Text = bytes | str


def _as_bytes(value: Text) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def _as_text(value: Text) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


@functools.lru_cache(maxsize=8)
def _private_key(pem: bytes) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the platform private key must be an RSA key")
    return key


@functools.lru_cache(maxsize=8)
def _public_key(pem: bytes) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the platform public key must be an RSA key")
    return key


def signing_message(timestamp: str | int, nonce: str, body: Text) -> bytes:
    """The exact bytes WeChat signs: ``timestamp\\nnonce\\nbody\\n``."""
    return f"{timestamp}\n{nonce}\n".encode() + _as_bytes(body) + b"\n"


def sign(private_key_pem: PemLike, timestamp: str | int, nonce: str, body: Text) -> str:
    """Base64 SHA256withRSA (PKCS#1 v1.5) signature of ``timestamp\\nnonce\\nbody\\n``."""
    key = _private_key(_as_bytes(private_key_pem))
    raw = key.sign(signing_message(timestamp, nonce, body), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(raw).decode("ascii")


def verify(public_key_pem: PemLike, timestamp: str | int, nonce: str, body: Text, signature: str) -> bool:
    """True when ``signature`` is the platform's signature of this timestamp, nonce and body."""
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    key = _public_key(_as_bytes(public_key_pem))
    try:
        key.verify(raw, signing_message(timestamp, nonce, body), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def new_nonce(length: int = 32) -> str:
    """A header nonce: upper-case letters and digits, as WeChat sends them."""
    return "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(length))


def encrypt_resource(
    apiv3_key: Text,
    plaintext: Text,
    associated_data: str,
    *,
    original_type: str | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """Encrypt a notification resource: ``{algorithm, ciphertext, associated_data, nonce[,
    original_type]}`` with a fresh 12-character nonce unless one is given."""
    key = _apiv3_key(apiv3_key)
    nonce = nonce or "".join(secrets.choice(_RESOURCE_NONCE_ALPHABET) for _ in range(12))
    sealed = AESGCM(key).encrypt(nonce.encode(), _as_bytes(plaintext), associated_data.encode())
    resource = {
        "algorithm": ALGORITHM,
        "ciphertext": base64.b64encode(sealed).decode("ascii"),
        "associated_data": associated_data,
        "nonce": nonce,
    }
    if original_type is not None:
        resource["original_type"] = original_type
    return resource


def decrypt_resource(apiv3_key: Text, resource: Mapping[str, Any]) -> bytes:
    """The plaintext of a notification resource; ValueError when it is not authentic."""
    if resource.get("algorithm") != ALGORITHM:
        raise ValueError(f"unsupported algorithm {resource.get('algorithm')!r}")
    try:
        sealed = base64.b64decode(str(resource["ciphertext"]), validate=True)
        nonce = str(resource["nonce"]).encode()
        associated = str(resource.get("associated_data") or "").encode()
        return AESGCM(_apiv3_key(apiv3_key)).decrypt(nonce, sealed, associated)
    except (KeyError, binascii.Error, InvalidTag) as exc:
        raise ValueError("the resource does not decrypt under this APIv3 key") from exc


def _apiv3_key(apiv3_key: Text) -> bytes:
    key = _as_bytes(apiv3_key)
    if len(key) != 32:
        raise ValueError("the APIv3 key must be exactly 32 bytes")
    return key


def build_notification_body(
    *,
    notification_id: str,
    create_time: str,
    event_type: str,
    summary: str,
    resource: Mapping[str, str],
) -> bytes:
    """A notification's JSON body (compact, UTF-8), as WeChat posts it."""
    document = {
        "id": notification_id,
        "create_time": create_time,
        "resource_type": RESOURCE_TYPE,
        "event_type": event_type,
        "summary": summary,
        "resource": dict(resource),
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def signed_headers(
    private_key_pem: PemLike,
    public_key_id: str,
    body: Text,
    *,
    timestamp: int,
    nonce: str | None = None,
) -> dict[str, str]:
    """The ``Wechatpay-*`` headers for ``body``, freshly signed at ``timestamp``."""
    nonce = nonce or new_nonce()
    return {
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_NONCE: nonce,
        HEADER_SERIAL: public_key_id,
        HEADER_SIGNATURE_TYPE: SIGNATURE_TYPE,
        HEADER_SIGNATURE: sign(private_key_pem, timestamp, nonce, body),
    }


def header(headers: Mapping[str, str], name: str) -> str:
    """A header's value, matched case-insensitively (HTTP header names are)."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return ""


def verify_headers(
    public_key_pem: PemLike, public_key_id: str, headers: Mapping[str, str], body: Text
) -> bool:
    """True when the headers carry a valid platform signature of ``body`` under ``public_key_id``.

    Refuses a signature probe (``WECHATPAY/SIGNTEST/…``), another serial or signature type.
    Does not look at the clock: see :func:`timestamp_is_fresh`.
    """
    signature = header(headers, HEADER_SIGNATURE)
    if not signature or signature.startswith(SIGN_TEST_PREFIX):
        return False
    if header(headers, HEADER_SIGNATURE_TYPE) != SIGNATURE_TYPE:
        return False
    if header(headers, HEADER_SERIAL) != public_key_id:
        return False
    timestamp, nonce = header(headers, HEADER_TIMESTAMP), header(headers, HEADER_NONCE)
    return verify(public_key_pem, timestamp, nonce, body, signature)


def timestamp_is_fresh(timestamp: str, now_s: float, max_skew_s: float = MAX_TIMESTAMP_SKEW_S) -> bool:
    """True when a ``Wechatpay-Timestamp`` is a number within ``max_skew_s`` of ``now_s``."""
    try:
        value = int(timestamp)
    except ValueError:
        return False
    return abs(now_s - value) <= max_skew_s


def _text_json(body: Text) -> Any:
    return loads_json(_as_text(body))


def open_notification(apiv3_key: Text, body: Text) -> tuple[dict[str, Any], dict[str, Any]]:
    """Parse a (verified) body; returns ``(envelope, resource plaintext as a dict)``."""
    envelope = _text_json(body)
    if not isinstance(envelope, dict) or envelope.get("resource_type") != RESOURCE_TYPE:
        raise ValueError("not an encrypt-resource notification")
    resource = envelope.get("resource")
    if not isinstance(resource, dict):
        raise ValueError("the notification carries no resource")
    plain = loads_json(decrypt_resource(apiv3_key, resource))
    if not isinstance(plain, dict):
        raise ValueError("the resource is not a JSON object")
    return envelope, plain


# --- Merchant request signatures (APIv3 ``Authorization``) ---------------------------------------
#
# A merchant signs each request to WeChat with its own key (``apiclient_key.pem``) over
# ``METHOD\nPATH?QUERY\ntimestamp\nnonce\nbody\n`` (body empty for GET) and sends
# ``Authorization: WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",signature="…",timestamp="…",
# serial_no="…"`` (serial_no: its certificate's serial, upper-case hex). WeChat verifies it with the
# merchant's certificate; the response comes back signed like a notification (``verify_headers``).

AUTHORIZATION_FIELDS = ("mchid", "nonce_str", "signature", "timestamp", "serial_no")


def request_message(method: str, path_with_query: str, timestamp: str | int, nonce: str, body: Text) -> bytes:
    """The exact bytes a merchant signs for one request:
    ``METHOD\\nPATH?QUERY\\ntimestamp\\nnonce\\nbody\\n``."""
    return f"{method.upper()}\n{path_with_query}\n{timestamp}\n{nonce}\n".encode() + _as_bytes(body) + b"\n"


def authorization(
    private_key_pem: PemLike,
    mchid: str,
    serial_no: str,
    method: str,
    path_with_query: str,
    body: Text = b"",
    *,
    timestamp: int,
    nonce: str | None = None,
) -> str:
    """The ``Authorization`` header value of one merchant request."""
    nonce = nonce or new_nonce()
    key = _private_key(_as_bytes(private_key_pem))
    raw = key.sign(
        request_message(method, path_with_query, timestamp, nonce, body), padding.PKCS1v15(), hashes.SHA256()
    )
    signature = base64.b64encode(raw).decode("ascii")
    fields = {
        "mchid": mchid,
        "nonce_str": nonce,
        "signature": signature,
        "timestamp": str(timestamp),
        "serial_no": serial_no,
    }
    return f"{SIGNATURE_TYPE} " + ",".join(f'{name}="{fields[name]}"' for name in AUTHORIZATION_FIELDS)


@dataclass(frozen=True)
class RequestSignature:
    """A parsed ``Authorization`` header."""

    mchid: str
    nonce_str: str
    signature: str
    timestamp: str
    serial_no: str


def parse_authorization(value: str) -> RequestSignature | None:
    """The fields of an ``Authorization`` header; None when it is not a complete
    ``WECHATPAY2-SHA256-RSA2048`` one (values quoted or not, in any order)."""
    schema, _, rest = value.strip().partition(" ")
    if schema != SIGNATURE_TYPE or len(rest) > 4096:
        return None
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, sep, raw = part.strip().partition("=")
        if not sep or name not in AUTHORIZATION_FIELDS or name in fields:
            return None
        fields[name] = raw.strip().removeprefix('"').removesuffix('"')
    if set(fields) != set(AUTHORIZATION_FIELDS) or not all(fields.values()):
        return None
    return RequestSignature(**fields)


def verify_request(
    merchant_public_key_pem: PemLike, signed: RequestSignature, method: str, path_with_query: str, body: Text
) -> bool:
    """True when ``signed`` is the merchant's signature of this request (its public key or
    certificate PEM). Does not look at the clock: see :func:`timestamp_is_fresh`."""
    try:
        raw = base64.b64decode(signed.signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    key = _merchant_public_key(_as_bytes(merchant_public_key_pem))
    message = request_message(method, path_with_query, signed.timestamp, signed.nonce_str, body)
    try:
        key.verify(raw, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


@functools.lru_cache(maxsize=64)
def _merchant_public_key(pem: bytes) -> rsa.RSAPublicKey:
    """A merchant's RSA public key from its certificate or a bare public key PEM."""
    key: object = (
        x509.load_pem_x509_certificate(pem).public_key()
        if b"BEGIN CERTIFICATE" in pem
        else serialization.load_pem_public_key(pem)
    )
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the merchant's key must be an RSA key")
    return key
