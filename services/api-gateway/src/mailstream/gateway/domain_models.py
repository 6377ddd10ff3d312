"""Request and response bodies of the domain settings API (sending domains, dedicated IPs), and
the views that build them; the CLI prints the same views as JSON."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mailstream.gateway.domain_handlers import DomainDetails, IpStatus
from mailstream.gateway.models import Timestamp
from mailstream.gateway.views import iso

RecordStatusName = Literal[
    "VERIFIED", "MISSING", "WRONG_VALUE", "MULTIPLE", "IP_NOT_AUTHORIZED", "TOO_MANY_LOOKUPS", "UNKNOWN", "UNCHECKED"
]


class SendingDomainCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    domain: str = Field(min_length=1, max_length=253, description="e.g. shop.example; IDNA names are accepted")


class DnsRecordView(BaseModel):
    kind: Literal["SPF", "DKIM", "RETURN_PATH", "DMARC"]
    type: Literal["TXT", "CNAME"]
    host: str
    value: str
    required: bool = Field(description="false for a recommendation (DMARC): it does not block verification")
    status: RecordStatusName
    reason: str


class SendingDomainView(BaseModel):
    domain: str
    state: Literal["PENDING", "VERIFIED", "FAILING"]
    verified: bool
    dkimSelector: str
    records: list[DnsRecordView]
    verifiedAt: Timestamp | None = None
    failingSince: Timestamp | None = None
    lastCheckedAt: Timestamp | None = None
    createdAt: Timestamp


class SendingDomainPage(BaseModel):
    results: list[SendingDomainView]
    paging: dict | None = Field(default=None, description="{next: {after, link}} when there are more")


class IpPoolAssign(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pool: str = Field(min_length=1, max_length=255, description="a pool name of the sending policy's pools.toml")


class DedicatedIpsView(BaseModel):
    pool: str | None
    ips: list[str]
    ready: bool = Field(description="true once the account has a pool and one of its sending domains is verified")
    reason: str
    availablePools: list[str]


def domain_view(details: DomainDetails) -> SendingDomainView:
    row = details.row
    records = [
        DnsRecordView(
            kind=r.kind.value,
            type=r.type,
            host=r.host,
            value=r.value,
            required=r.required,
            status=details.checks[r.kind].status.value,
            reason=details.checks[r.kind].reason,
        )
        for r in details.records
    ]
    return SendingDomainView(
        domain=row.domain,
        state=row.state,
        verified=row.verified_at is not None,
        dkimSelector=row.dkim_selector,
        records=records,
        verifiedAt=iso(row.verified_at),
        failingSince=iso(row.failing_since),
        lastCheckedAt=iso(row.last_checked_at),
        createdAt=iso(row.created_at),
    )


def ips_view(status: IpStatus) -> DedicatedIpsView:
    return DedicatedIpsView(
        pool=status.pool,
        ips=list(status.ips),
        ready=status.ready,
        reason=status.reason,
        availablePools=list(status.available_pools),
    )
