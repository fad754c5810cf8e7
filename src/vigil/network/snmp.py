"""The SNMP collector's client (pysnmp, asyncio): the system group, CPU and memory
(HOST-RESOURCES-MIB) and the interface table (IF-MIB) of one device, v2c or v3 (USM).

Numeric OIDs and ``lookupMib=False``: no MIB files are loaded or needed. Tables are read with
GETBULK walks, one column each. One ``SnmpEngine`` serves a whole sweep (its event loop).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pysnmp.hlapi.v3arch.asyncio import (
    USM_AUTH_HMAC96_MD5,
    USM_AUTH_HMAC96_SHA,
    USM_AUTH_HMAC128_SHA224,
    USM_AUTH_HMAC192_SHA256,
    USM_AUTH_HMAC256_SHA384,
    USM_AUTH_HMAC384_SHA512,
    USM_PRIV_CBC56_DES,
    USM_PRIV_CFB128_AES,
    USM_PRIV_CFB192_AES_BLUMENTHAL,
    USM_PRIV_CFB256_AES_BLUMENTHAL,
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    Udp6TransportTarget,
    UdpTransportTarget,
    UsmUserData,
    bulk_walk_cmd,
    get_cmd,
)

SYS_DESCR = "1.3.6.1.2.1.1.1.0"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"  # hundredths of a second since the agent started
SYS_NAME = "1.3.6.1.2.1.1.5.0"
HR_PROCESSOR_LOAD = "1.3.6.1.2.1.25.3.3.1.2"
HR_STORAGE_TYPE = "1.3.6.1.2.1.25.2.3.1.2"
HR_STORAGE_UNITS = "1.3.6.1.2.1.25.2.3.1.4"
HR_STORAGE_SIZE = "1.3.6.1.2.1.25.2.3.1.5"
HR_STORAGE_USED = "1.3.6.1.2.1.25.2.3.1.6"
HR_STORAGE_RAM = "1.3.6.1.2.1.25.2.1.2"
#: IF-MIB columns, by the name the samples use.
IF_COLUMNS = {
    "name": "1.3.6.1.2.1.31.1.1.1.1",  # ifName
    "oper": "1.3.6.1.2.1.2.2.1.8",  # ifOperStatus: 1 up, 2 down, …
    "in_octets": "1.3.6.1.2.1.31.1.1.1.6",  # ifHCInOctets (64-bit)
    "out_octets": "1.3.6.1.2.1.31.1.1.1.10",  # ifHCOutOctets (64-bit)
    "in_errors": "1.3.6.1.2.1.2.2.1.14",
    "out_errors": "1.3.6.1.2.1.2.2.1.20",
    "in_discards": "1.3.6.1.2.1.2.2.1.13",
    "out_discards": "1.3.6.1.2.1.2.2.1.19",
}
AUTH = {
    "MD5": USM_AUTH_HMAC96_MD5,
    "SHA": USM_AUTH_HMAC96_SHA,
    "SHA224": USM_AUTH_HMAC128_SHA224,
    "SHA256": USM_AUTH_HMAC192_SHA256,
    "SHA384": USM_AUTH_HMAC256_SHA384,
    "SHA512": USM_AUTH_HMAC384_SHA512,
}
PRIV = {  # AES192/256 with Blumenthal key extension, as net-snmp and most agents do them
    "DES": USM_PRIV_CBC56_DES,
    "AES": USM_PRIV_CFB128_AES,
    "AES192": USM_PRIV_CFB192_AES_BLUMENTHAL,
    "AES256": USM_PRIV_CFB256_AES_BLUMENTHAL,
}


class SnmpError(Exception):
    """The agent did not answer, refused the credentials or answered with an error."""


def auth_data(secret: Mapping[str, Any]) -> CommunityData | UsmUserData:
    """pysnmp credentials from a device's decrypted ones (see schemas.SnmpV2c / SnmpV3)."""
    if secret.get("version") == "2c":
        return CommunityData(secret["community"], mpModel=1)
    options: dict[str, Any] = {}
    if secret.get("auth_protocol"):
        options.update(authKey=secret["auth_key"], authProtocol=AUTH[secret["auth_protocol"]])
    if secret.get("priv_protocol"):
        options.update(privKey=secret["priv_key"], privProtocol=PRIV[secret["priv_protocol"]])
    return UsmUserData(secret["user"], **options)


@dataclass
class SnmpPoll:
    at: datetime
    uptime_s: float
    name: str
    descr: str
    cpu_pct: float | None = None
    mem_pct: float | None = None
    #: ifName -> column name -> value (oper status and counters)
    interfaces: dict[str, dict[str, float]] = field(default_factory=dict)


class SnmpClient:
    def __init__(self, timeout: float = 1.0, retries: int = 1, max_repetitions: int = 25):
        self.engine = SnmpEngine()
        self.timeout, self.retries, self.max_repetitions = timeout, retries, max_repetitions

    def close(self) -> None:
        self.engine.close_dispatcher()

    async def _target(self, address: str, port: int) -> UdpTransportTarget | Udp6TransportTarget:
        try:
            v6 = ipaddress.ip_address(address).version == 6
        except ValueError:
            v6 = False
        cls = Udp6TransportTarget if v6 else UdpTransportTarget
        return await cls.create((address, port), timeout=self.timeout, retries=self.retries)

    async def _get(self, auth: Any, target: Any, *oids: str) -> dict[str, Any]:
        error, status, index, binds = await get_cmd(
            self.engine,
            auth,
            target,
            ContextData(),
            *(ObjectType(ObjectIdentity(o)) for o in oids),
            lookupMib=False,
        )
        if error:
            raise SnmpError(str(error))
        if status:
            raise SnmpError(f"{status.prettyPrint()} at {index}")
        return {str(name): value for name, value in binds}

    async def _walk(self, auth: Any, target: Any, column: str) -> dict[str, Any]:
        """index (the OID's suffix) -> value of one table column."""
        out: dict[str, Any] = {}
        async for error, status, _index, binds in bulk_walk_cmd(
            self.engine,
            auth,
            target,
            ContextData(),
            0,
            self.max_repetitions,
            ObjectType(ObjectIdentity(column)),
            lookupMib=False,
            lexicographicMode=False,
        ):
            if error:
                raise SnmpError(str(error))
            if status:
                raise SnmpError(f"{status.prettyPrint()} walking {column}")
            for name, value in binds:
                oid = str(name)
                if oid.startswith(column + "."):
                    out[oid[len(column) + 1 :]] = value
        return out

    async def poll(self, address: str, port: int, secret: Mapping[str, Any]) -> SnmpPoll:
        auth, target = auth_data(secret), await self._target(address, port)
        at = datetime.now(UTC)
        system = await self._get(auth, target, SYS_UPTIME, SYS_NAME, SYS_DESCR)
        poll = SnmpPoll(
            at=at,
            uptime_s=int(system[SYS_UPTIME]) / 100,
            name=str(system[SYS_NAME]),
            descr=str(system[SYS_DESCR]),
        )
        loads = [int(v) for v in (await self._walk(auth, target, HR_PROCESSOR_LOAD)).values()]
        if loads:
            poll.cpu_pct = sum(loads) / len(loads)
        poll.mem_pct = await self._memory(auth, target)
        columns = {k: await self._walk(auth, target, oid) for k, oid in IF_COLUMNS.items()}
        for index, name in columns.pop("name").items():
            values = {k: float(int(col[index])) for k, col in columns.items() if index in col}
            poll.interfaces[str(name) or f"if{index}"] = values
        return poll

    async def _memory(self, auth: Any, target: Any) -> float | None:
        types = await self._walk(auth, target, HR_STORAGE_TYPE)
        ram = [i for i, t in types.items() if str(t) == HR_STORAGE_RAM]
        if not ram:
            return None
        size = await self._walk(auth, target, HR_STORAGE_SIZE)
        used = await self._walk(auth, target, HR_STORAGE_USED)
        total = int(size.get(ram[0], 0))
        return 100.0 * int(used.get(ram[0], 0)) / total if total else None
