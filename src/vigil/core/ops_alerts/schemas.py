"""Alertmanager's webhook notification (``version`` "4") as Vigil accepts it, and the alerts
as the API returns them. Every size is bounded: a notification past a limit is refused whole
(422), nothing of it stored.

The format: https://prometheus.io/docs/alerting/latest/configuration/#webhook_config"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

MAX_ALERTS = 1_000
MAX_PAIRS = 64  # labels or annotations of one alert (or of a group)
MAX_KEY = 200
MAX_LABEL_VALUE = 1_024
MAX_ANNOTATION_VALUE = 10_000
MAX_URL = 2_000
MAX_ALERTNAME = 200
MAX_SEVERITY = 64
#: Alertmanager's "no end time" for a firing alert.
ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("text may not contain NUL (\\x00) characters")
    return value


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00:00-05:00 is in the year 10000 in UTC
        raise ValueError("the time is out of range once converted to UTC") from None


NoNul = AfterValidator(_no_nul)
Moment = Annotated[AwareDatetime, AfterValidator(_in_utc)]
Key = Annotated[str, StringConstraints(min_length=1, max_length=MAX_KEY), NoNul]
LabelValue = Annotated[str, StringConstraints(max_length=MAX_LABEL_VALUE), NoNul]
AnnotationValue = Annotated[str, StringConstraints(max_length=MAX_ANNOTATION_VALUE), NoNul]
Url = Annotated[str, StringConstraints(max_length=MAX_URL), NoNul]
Name = Annotated[str, StringConstraints(max_length=MAX_KEY), NoNul]
Labels = Annotated[dict[Key, LabelValue], Field(max_length=MAX_PAIRS)]
Annotations = Annotated[dict[Key, AnnotationValue], Field(max_length=MAX_PAIRS)]
Status = Literal["firing", "resolved"]


class AlertIn(BaseModel):
    """One alert of a notification."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    status: Status
    labels: Labels = Field(min_length=1)
    annotations: Annotations = Field(default_factory=dict)
    starts_at: Moment = Field(alias="startsAt")
    ends_at: Moment | None = Field(
        None, alias="endsAt", description="0001-01-01T00:00:00Z (Alertmanager's zero) = none."
    )
    generator_url: Url = Field("", alias="generatorURL")
    fingerprint: str = Field(
        pattern=r"^[0-9A-Za-z]{1,64}$", description="Alertmanager's hash of the labels."
    )

    @model_validator(mode="after")
    def _filter_labels_fit(self) -> AlertIn:
        # Copied into columns that are filtered and indexed: shorter than other labels.
        for label, limit in (("alertname", MAX_ALERTNAME), ("severity", MAX_SEVERITY)):
            if len(self.labels.get(label, "")) > limit:
                raise ValueError(f"the label {label!r} is longer than {limit} characters")
        return self

    def end(self) -> datetime | None:
        """The end time, None for Alertmanager's zero time."""
        if self.ends_at is None or self.ends_at <= ZERO_TIME:
            return None
        return self.ends_at


class Notification(BaseModel):
    """What Alertmanager's ``webhook_configs`` POST: a group of alerts."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    version: Literal["4"]
    status: Status
    receiver: Name
    alerts: list[AlertIn] = Field(max_length=MAX_ALERTS)
    group_key: Url = Field("", alias="groupKey")
    truncated_alerts: int = Field(0, alias="truncatedAlerts", ge=0, le=2_147_483_647)
    group_labels: Labels = Field(default_factory=dict, alias="groupLabels")
    common_labels: Labels = Field(default_factory=dict, alias="commonLabels")
    common_annotations: Annotations = Field(default_factory=dict, alias="commonAnnotations")
    external_url: Url = Field("", alias="externalURL")


class ReceiveResult(BaseModel):
    received: int = Field(description="Alerts in the notification (one per fingerprint).")
    stored: int = Field(
        description="Alerts inserted or updated; a notice about an earlier episode of an alert "
        "than the one stored (an older startsAt) changes nothing."
    )


class OpsAlertOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    fingerprint: str
    status: Status
    alertname: str
    severity: str
    labels: dict[str, str]
    annotations: dict[str, Any]
    starts_at: datetime
    ends_at: datetime | None
    generator_url: str
    receiver: str
    first_received_at: datetime
    last_received_at: datetime
    times_received: int


class OpsAlertPage(BaseModel):
    items: list[OpsAlertOut]
    total: int
    limit: int
    offset: int
    next_offset: int | None
