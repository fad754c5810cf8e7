"""Network API request and response models."""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    field_validator,
    model_validator,
)

from vigil.network.rules import Kind

MAX_ID = 2_147_483_647
HOSTNAME = re.compile(
    r"^(?=.{1,253}$)(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?$"
)
PRINTABLE = r"^[^\x00-\x1f\x7f]+$"
Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=PRINTABLE)
]
Label = Name
Tag = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9_.:/-]{1,50}$")]
DeviceType = Annotated[
    str, StringConstraints(strip_whitespace=True, to_lower=True, pattern=r"^[A-Za-z0-9-]{1,32}$")
]
Interval = Annotated[int, Field(ge=10, le=86_400)]
DeviceId = Annotated[int, Field(ge=1, le=MAX_ID)]


def valid_address(value: str) -> str:
    """An IPv4 or IPv6 address (normalised) or a DNS name."""
    value = value.strip()
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if HOSTNAME.match(value) and not value.replace(".", "").isdigit():
        return value.rstrip(".").lower()
    raise ValueError(f"{value!r} is neither an IPv4/IPv6 address nor a DNS name")


class MaintenanceWindow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: AwareDatetime
    end: AwareDatetime
    reason: Annotated[str, Field(max_length=200)] = ""

    @model_validator(mode="after")
    def _ordered(self) -> MaintenanceWindow:
        if self.end <= self.start:
            raise ValueError("a maintenance window must end after it starts")
        return self


class SnmpV2c(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal["2c"]
    community: Annotated[SecretStr, Field(min_length=1, max_length=255)]


class SnmpV3(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal["3"]
    user: Annotated[str, Field(min_length=1, max_length=64)]
    auth_protocol: Literal["MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512"] | None = None
    auth_key: Annotated[SecretStr, Field(min_length=8, max_length=255)] | None = None
    priv_protocol: Literal["DES", "AES", "AES192", "AES256"] | None = None
    priv_key: Annotated[SecretStr, Field(min_length=8, max_length=255)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> SnmpV3:
        if (self.auth_protocol is None) != (self.auth_key is None):
            raise ValueError("auth_protocol and auth_key go together")
        if (self.priv_protocol is None) != (self.priv_key is None):
            raise ValueError("priv_protocol and priv_key go together")
        if self.priv_protocol is not None and self.auth_protocol is None:
            raise ValueError("privacy (priv_*) needs authentication (auth_*) too")
        return self


Credentials = Annotated[SnmpV2c | SnmpV3, Field(discriminator="version")]


def credential_kind(credentials: SnmpV2c | SnmpV3) -> str:
    return "snmp-v2c" if isinstance(credentials, SnmpV2c) else "snmp-v3"


def credential_secret(credentials: SnmpV2c | SnmpV3) -> dict[str, Any]:
    """The plain document that is encrypted and stored."""
    out: dict[str, Any] = {}
    for name, value in credentials:
        out[name] = value.get_secret_value() if isinstance(value, SecretStr) else value
    return out


class _DeviceFields(BaseModel):
    @field_validator("address", check_fields=False)
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return None if value is None else valid_address(value)

    @field_validator("tags", check_fields=False)
    @classmethod
    def _tags(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else sorted(set(value))


class DeviceIn(_DeviceFields):
    model_config = ConfigDict(extra="forbid")

    name: Name
    address: Annotated[str, Field(max_length=255, description="IPv4, IPv6 or a DNS name.")]
    type: DeviceType = "other"
    vendor: Label | None = None
    platform: Label | None = None
    site: Label | None = None
    tags: Annotated[list[Tag], Field(max_length=20)] = []
    parent_id: DeviceId | None = None
    enabled: bool = True
    icmp_interval_seconds: Interval = 60
    snmp_interval_seconds: Interval | None = None
    snmp_port: Annotated[int, Field(ge=1, le=65535)] = 161
    maintenance: Annotated[list[MaintenanceWindow], Field(max_length=50)] = []
    credentials: Credentials | None = Field(
        None, description="SNMP v2c or v3 credentials; stored encrypted, never returned."
    )


class DevicePatch(_DeviceFields):
    """Only the fields sent change; ``"credentials": null`` removes them."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    address: Annotated[str, Field(max_length=255)] | None = None
    type: DeviceType | None = None
    vendor: Label | None = None
    platform: Label | None = None
    site: Label | None = None
    tags: Annotated[list[Tag], Field(max_length=20)] | None = None
    parent_id: DeviceId | None = None
    enabled: bool | None = None
    icmp_interval_seconds: Interval | None = None
    snmp_interval_seconds: Interval | None = None
    snmp_port: Annotated[int, Field(ge=1, le=65535)] | None = None
    maintenance: Annotated[list[MaintenanceWindow], Field(max_length=50)] | None = None
    credentials: Credentials | None = None

    @model_validator(mode="after")
    def _not_null(self) -> DevicePatch:
        for name in ("name", "address", "type", "tags", "enabled", "icmp_interval_seconds"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        for name in ("snmp_port", "maintenance"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class DeviceOut(BaseModel):
    id: int
    name: str
    address: str
    type: str
    vendor: str | None
    platform: str | None
    site: str | None
    tags: list[str]
    parent_id: int | None
    enabled: bool
    icmp_interval_seconds: int
    snmp_interval_seconds: int | None
    snmp_port: int
    maintenance: list[dict[str, Any]]
    credentials: str | None = Field(
        description="Which credentials are stored (snmp-v2c, snmp-v3), never the secrets."
    )
    status: str = Field(description="up, down, unreachable (its parent is down) or unknown.")
    last_poll_at: datetime | None
    last_rtt_ms: float | None
    last_loss_pct: float | None
    created_at: datetime
    updated_at: datetime


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class RowError(BaseModel):
    row: int = Field(description="Line number in the CSV file (the header is line 1).")
    message: str


class ImportReport(BaseModel):
    created: int
    updated: int
    dry_run: bool


class PointOut(BaseModel):
    ts: datetime = Field(description="The sample's time, or the rollup bucket's start.")
    value: float = Field(description="The sample, or the bucket's average.")
    min: float | None = Field(None, description="The bucket's minimum (rollups only).")
    max: float | None = Field(None, description="The bucket's maximum (rollups only).")


class SeriesOut(BaseModel):
    device_id: int
    metric: str
    resolution: str = "raw"
    points: list[PointOut]


class AlertOut(BaseModel):
    id: int
    device_id: int
    device: str
    rule: str = Field(description="The rule's kind, e.g. device_down, cpu.")
    rule_id: int | None = Field(description="The stored rule; null: the built-in down rule.")
    rule_name: str | None
    subject: str = Field(description="The interface, for interface rules; else empty.")
    severity: str
    state: str = Field(description="pending, firing, acknowledged or resolved.")
    started_at: datetime
    fired_at: datetime | None
    resolved_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    suppressed_by: str | None
    value: float | None = Field(description="The last value observed.")
    message: str


# --- alert rules ------------------------------------------------------------------------------

RuleKind = Kind  # the rules' own list (vigil.network.rules), one place to add a kind
Severity = Literal["info", "warning", "critical"]
Glob = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9_.:/*?\[\]-]{1,64}$")
]
#: (lowest, highest exclusive) threshold of each kind that has one, and its unit.
THRESHOLDS: dict[str, tuple[float, float, str]] = {
    "packet_loss": (0, 100, "%"),
    "rtt": (0, 600_000, "ms"),
    "interface_errors": (0, 1e12, "errors per second"),
    "cpu": (0, 100, "%"),
    "memory": (0, 100, "%"),
}


def check_rule(
    kind: str,
    device_id: int | None,
    tag: str | None,
    threshold: float | None,
    failures: int | None,
    interface: str | None,
) -> None:
    """The checks across fields of a rule; raises ValueError naming what is wrong."""
    if (device_id is None) == (tag is None):
        raise ValueError("a rule names either a device (device_id) or a tag, exactly one")
    bounds = THRESHOLDS.get(kind)
    if bounds is None:
        if threshold is not None:
            raise ValueError(f"threshold: a {kind} rule takes none")
    elif threshold is None:
        raise ValueError(f"threshold: a {kind} rule needs one ({bounds[2]})")
    elif not bounds[0] <= threshold < bounds[1]:
        raise ValueError(
            f"threshold: {threshold:g} is out of range for {kind} "
            f"({bounds[0]:g} to under {bounds[1]:g} {bounds[2]})"
        )
    if failures is not None and kind != "device_down":
        raise ValueError("failures: only device_down rules count failed polls")
    if interface is not None and kind not in ("interface_down", "interface_errors"):
        raise ValueError("interface: only interface rules take an interface pattern")


class _RuleFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    device_id: DeviceId | None = Field(None, description="The device the rule watches.")
    tag: Tag | None = Field(None, description="Or: every device with this tag.")
    threshold: float | None = Field(
        None,
        description="packet_loss, cpu, memory: % (0 to under 100); rtt: ms; "
        "interface_errors: errors per second. None for device_down, interface_down and "
        "snmp_down.",
    )
    failures: Annotated[int, Field(ge=1, le=1000)] | None = Field(
        None, description="device_down: consecutive failed polls before it fires (default 3)."
    )
    for_seconds: Annotated[int, Field(ge=0, le=7 * 86_400)] | None = Field(
        None,
        description="Pending period: how long the condition must hold before the alert "
        "fires (device_down: or failing this long, 0: only the failures count).",
    )
    recover_after: Annotated[int, Field(ge=1, le=1000)] | None = Field(
        None, description="Good observations in a row before the alert is resolved."
    )
    interface: Glob | None = Field(
        None, description="Interface rules: a glob over interface names (none: all)."
    )
    severity: Severity | None = None
    enabled: bool | None = None


class RuleIn(_RuleFields):
    name: Name
    kind: RuleKind
    for_seconds: Annotated[int, Field(ge=0, le=7 * 86_400)] = 0
    recover_after: Annotated[int, Field(ge=1, le=1000)] = 2
    severity: Severity = "warning"
    enabled: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> RuleIn:
        check_rule(
            self.kind, self.device_id, self.tag, self.threshold, self.failures, self.interface
        )
        return self


class RulePatch(_RuleFields):
    """Only the fields sent change (the kind cannot); the result is checked as a whole."""

    @model_validator(mode="after")
    def _not_null(self) -> RulePatch:
        for name in ("name", "for_seconds", "recover_after", "severity", "enabled"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class RuleOut(BaseModel):
    id: int
    name: str
    kind: str
    device_id: int | None
    device: str | None
    tag: str | None
    threshold: float | None
    failures: int | None
    for_seconds: int
    recover_after: int
    interface: str | None
    severity: str
    enabled: bool
    created_at: datetime
    updated_at: datetime


class PingOut(BaseModel):
    address: str
    sent: int
    received: int
    loss_pct: float
    rtt_min_ms: float | None
    rtt_avg_ms: float | None
    rtt_max_ms: float | None
    jitter_ms: float | None
    error: str | None
