"""Personal data in citizens' reports: keyed pseudonyms and masked phone numbers.

The contract (issue 3, subsystem 4): the name and phone number of a person who reports never
reach Kafka, and so never the raw tables, KPIs, alerts or dashboards. At most a **keyed
pseudonym** of the person is kept, which lets analysts count repeat reporters without knowing
who they are. This module is the one place that does it; every producer of
``ioc.feedback.report.v1`` applies :func:`protect_report` before validation and sending:

- ``ioc produce`` (through :func:`pre_send_transforms`, the producer's per-topic pre-send table):
  input JSON lines may carry ``reporter_name`` and ``reporter_phone``; they are removed and
  replaced by ``reporter_pseudonym`` before the line is converted, so they are never sent;
- the simulator (``ioc.connectors.sim_feedback``) builds its fake reporters' reports the same
  way, with the same key.

The Avro schema has no field for a name or a phone number, so a producer that skips this step
cannot send them as fields either: such a line is rejected (unknown field) rather than sent.

**Pseudonym** — :func:`pseudonymize`: ``HMAC-SHA256(key, kind + ":" + normalised value)``,
the first 16 hex digits (64 bits; collisions are negligible for a province's reporters). A
value made only of digits, spaces and ``+ . - ( )`` with at least 6 digits is a phone number,
normalised to the national form: separators dropped, ``+84``/``84`` → ``0``, a lost leading
zero restored (``905123456`` → ``0905123456``, as spreadsheets do to phone columns), so every
way of writing one number gives one pseudonym. Anything else is a name, compared without case,
accents (``đ`` → ``d``) or extra spaces. The phone number is used when given (it identifies a
person better), else the name, else the pseudonym is empty. Without the key a pseudonym cannot
be recomputed from a guessed phone number, which a plain hash would allow (Vietnamese mobile
numbers are few enough to try them all).

**Key** — :func:`pseudonym_key`: ``IOC_PSEUDONYM_KEY`` (a secret setting), else a random key
generated once into ``$IOC_DATA_DIR/pseudonym.key`` with mode 0600 (a key file that others
can read is refused). Never logged.

**Masking** — :func:`mask_numbers` replaces, in ``description`` and ``address``, every
phone-number-like digit run with ``[số đã ẩn]``:

1. :data:`PHONE_PATTERN`: ``0``, ``84`` or ``+84``, then 9 or 10 more digits, each optionally
   preceded by up to two separators (space, ``.``, ``-``, ``(``, ``)``), not glued to a letter,
   digit or ``+`` before nor a digit after — ``0905 123 456``, ``0905.123.456``,
   ``(0235) 3812 345``, ``+84 905 123 456``;
2. :data:`LONG_DIGITS`: any run of 9 or more digits without separators — phone numbers without
   the leading zero, citizen ID and bank account numbers.

Amounts written with dot groups (``150.000.000 đồng``) and dates are kept; an amount written as
9+ bare digits is masked too (the safe side).

**Dead letters** — :func:`redact_dead_letter`. The producers above protect a report before it
is validated, so what they reject never reaches Kafka. But bytes can reach the report topic
without them (an agency's own client writing straight to Kafka, an old producer), and the
stream worker dead-letters what it cannot decode or validate *with the original bytes*. For a
topic carrying personal data (:data:`PERSONAL_TOPICS`) the worker stores a redacted copy in
``ioc.dlq.v1`` instead:

1. Avro of the topic that decodes but fails validation: the record is protected (a
   ``reporter_pseudonym`` that is not 16 hex digits — a phone number or name put there — is
   replaced by its pseudonym; ``description``/``address`` masked) and re-encoded as
   single-object Avro, so ``ioc dlq replay`` still works once the cause is fixed;
2. a JSON object (someone sent JSON instead of Avro): ``reporter_name``/``reporter_phone`` become
   the pseudonym, fields that are not in the contract are dropped (a ``phone`` or ``ho_ten``
   column cannot be told from anything else), the remaining text has phone numbers masked;
   the payload becomes that JSON (replay it with ``ioc dlq replay --fixed``);
3. anything else (corrupt or unknown-schema Avro, other text): the payload is **withheld**
   (empty); the reason says how many bytes there were. The sender must send it again.

The reason and the key get phone numbers masked too. The original bytes stay on the source
topic until its Kafka retention ends (60 days for reports); that topic is readable by the
platform only (``ioc acl``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import stat
import unicodedata
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ioc.infra.settings import Settings
from ioc.schemas.serde import DecodeError, EncodeError, Serde

REPORT_TOPIC = "ioc.feedback.report.v1"
PERSONAL_TOPICS = frozenset({REPORT_TOPIC})
"""Topics whose events may carry personal data (reporters): dead letters of these are redacted."""
_PSEUDONYM = re.compile(r"^[0-9a-f]{16}$")
_FREE_TEXT = ("description", "address")
PSEUDONYM_HEX = 16
MIN_KEY_CHARS = 16
MASK = "[số đã ẩn]"

PHONE_PATTERN = re.compile(r"(?<![\w+])\(?(?:\+84|84|0)(?:[ .\-()]{0,2}\d){9,10}(?!\d)")
LONG_DIGITS = re.compile(r"(?<!\d)\d{9,}(?!\d)")
_PHONE_CHARS = re.compile(r"^[\d\s.\-+()]+$")

KeySource = bytes | Callable[[], bytes]


class PseudonymKeyError(RuntimeError):
    """The pseudonym key is missing, too short, or its file is unsafe."""


def normalise_phone(value: str) -> str | None:
    """The national form of a phone number (``0`` + digits), or ``None`` if ``value`` does
    not look like one."""
    text = value.strip()
    digits = re.sub(r"\D", "", text)
    if not _PHONE_CHARS.match(text) or len(digits) < 6:
        return None
    if text.startswith("+") and digits.startswith("84"):
        return "0" + digits[2:]
    if digits.startswith("84") and len(digits) in (11, 12):
        return "0" + digits[2:]
    if not digits.startswith("0") and len(digits) in (9, 10):
        return "0" + digits
    return digits


def normalise_name(value: str) -> str:
    """Lower case, no accents (``đ`` → ``d``), single spaces."""
    text = unicodedata.normalize("NFD", value.replace("đ", "d").replace("Đ", "D"))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(text.casefold().split())


def pseudonymize(value: str, key: bytes) -> str:
    """The keyed pseudonym of a phone number or a name (16 hex digits; see the module doc)."""
    if not key:
        raise PseudonymKeyError("empty pseudonym key")
    phone = normalise_phone(value)
    if phone is not None:
        message = "phone:" + phone
    else:
        name = normalise_name(value)
        if not name:
            raise ValueError("nothing to pseudonymise: empty name or phone number")
        message = "name:" + name
    digest = hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()
    return digest[:PSEUDONYM_HEX]


def mask_numbers(text: str) -> str:
    """``text`` with phone-number-like digit runs replaced by :data:`MASK`."""
    return LONG_DIGITS.sub(MASK, PHONE_PATTERN.sub(MASK, text))


def protect_report(obj: Mapping[str, Any], key: KeySource) -> dict[str, Any]:
    """A feedback report (JSON object or record) without personal data.

    ``reporter_name`` and ``reporter_phone`` are removed; ``reporter_pseudonym`` becomes the
    pseudonym of the phone number if given, else of the name (a pseudonym already in ``obj`` is
    kept when neither is given); ``description`` and ``address`` are masked. Idempotent, so a
    record can pass through it twice. ``key`` may be a callable, so the key is only loaded (or
    generated) when a name or phone number actually needs it.
    """
    out = dict(obj)
    name = out.pop("reporter_name", None)
    phone = out.pop("reporter_phone", None)
    for value in (phone, name):
        text = "" if value is None else str(value).strip()
        if text:
            out["reporter_pseudonym"] = pseudonymize(text, key() if callable(key) else key)
            break
    for field in ("description", "address"):
        if isinstance(out.get(field), str):
            out[field] = mask_numbers(out[field])
    return out


def _read_key_file(path: Path) -> bytes:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PseudonymKeyError(f"{path} can be read by other users (mode "
                                f"{stat.S_IMODE(mode):o}); run `chmod 600 {path}`")
    key = path.read_text(encoding="utf-8").strip()
    if len(key) < MIN_KEY_CHARS:
        raise PseudonymKeyError(f"{path} holds no usable key (fewer than {MIN_KEY_CHARS} "
                                "characters)")
    return key.encode("utf-8")


def _read_or_create(path: Path) -> bytes:
    if path.exists():
        return _read_key_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written under a temporary name, then linked into place: two processes starting at once
    # both end up with the one key that won, never a half-written file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(secrets.token_hex(32) + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)
    return _read_key_file(path)


def pseudonym_key(settings: Settings, create: bool = True) -> bytes:
    """The deployment's pseudonym key: ``IOC_PSEUDONYM_KEY``, else the key file under
    ``$IOC_DATA_DIR`` (generated on first use unless ``create`` is false: a deletion request
    must recompute existing pseudonyms, never start a new key)."""
    if settings.pseudonym_key is not None:
        key = settings.pseudonym_key.get_secret_value()
        if len(key) < MIN_KEY_CHARS:
            raise PseudonymKeyError(f"IOC_PSEUDONYM_KEY must be at least {MIN_KEY_CHARS} "
                                    "characters")
        return key.encode("utf-8")
    if not create and not settings.pseudonym_key_file.exists():
        raise PseudonymKeyError(f"no pseudonym key: IOC_PSEUDONYM_KEY is unset and "
                                f"{settings.pseudonym_key_file} does not exist, so nothing was "
                                "pseudonymised with this deployment's key here")
    return _read_or_create(settings.pseudonym_key_file)


def lazy_key(settings: Settings) -> Callable[[], bytes]:
    """:func:`pseudonym_key`, loaded on the first call and then kept."""
    cached: list[bytes] = []

    def load() -> bytes:
        if not cached:
            cached.append(pseudonym_key(settings))
        return cached[0]

    return load


def pre_send_transforms(settings: Settings) -> dict[str, Callable[[dict[str, Any]],
                                                                   dict[str, Any]]]:
    """The per-topic pre-send steps for :class:`~ioc.connectors.producer.EventProducer`
    (``pre_send=``): personal data out of feedback reports."""
    key = lazy_key(settings)
    return {REPORT_TOPIC: lambda obj: protect_report(obj, key)}


def is_pseudonym(value: str) -> bool:
    """16 lowercase hex digits, the shape of :func:`pseudonymize`'s output."""
    return bool(_PSEUDONYM.match(value))


def _protect_any(obj: Mapping[str, Any], key: KeySource) -> dict[str, Any]:
    """:func:`protect_report`, and a ``reporter_pseudonym`` that is not one is pseudonymised."""
    out = protect_report(obj, key)
    given = out.get("reporter_pseudonym")
    if isinstance(given, str) and given.strip() and not is_pseudonym(given.strip()):
        out["reporter_pseudonym"] = pseudonymize(given, key() if callable(key) else key)
    return out


def redact_dead_letter(topic: str, key: bytes | None, payload: bytes, reason: str,
                       serde: Serde, secret: KeySource
                       ) -> tuple[bytes | None, bytes, str]:
    """``(key, payload, reason)`` of a dead letter as it may be stored: unchanged for topics
    without personal data, redacted for :data:`PERSONAL_TOPICS` (rules in the module doc)."""
    if topic not in PERSONAL_TOPICS:
        return key, payload, reason
    reason = mask_numbers(reason)
    if key is not None:
        try:
            key = mask_numbers(key.decode("utf-8")).encode("utf-8")
        except UnicodeDecodeError:
            key = None
    try:
        redacted = _redacted_payload(topic, payload, serde, secret)
    except PseudonymKeyError:  # no usable key: nothing may be kept
        redacted = None
    if redacted is not None:
        return key, redacted[0], reason + redacted[1]
    return key, b"", (reason + f" [personal data: payload of {len(payload)} bytes withheld, "
                      "it could not be read to redact it; the sender must send it again]")


def _redacted_payload(topic: str, payload: bytes, serde: Serde, secret: KeySource
                      ) -> tuple[bytes, str] | None:
    try:
        record = serde.decode(topic, payload, check=False)
    except DecodeError:
        record = None
    if record is not None:
        try:
            clean = serde.encode_unchecked(topic, _protect_any(record, secret))
            return clean, " [personal data: payload redacted]"
        except (EncodeError, ValueError):
            pass
    obj: Any = None
    try:
        obj = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        pass
    if isinstance(obj, dict):
        fields = set(serde.catalogue.get(topic).field_names)
        protected = _protect_any(obj, secret)
        dropped = sorted(k for k in protected if k not in fields)
        ids = ("event_id", "report_id", "reporter_pseudonym")  # not text: never masked
        kept = {k: (mask_numbers(v) if isinstance(v, str) and k not in ids else v)
                for k, v in protected.items() if k in fields}
        note = " [personal data: payload redacted"
        if dropped:
            note += "; fields not in the contract dropped: " + ", ".join(
                mask_numbers(str(k))[:40] for k in dropped[:20])
        return json.dumps(kept, ensure_ascii=False).encode("utf-8"), note + "]"
    return None
