"""The SNMP collector's client (asyncio): the system group, CPU and memory
(HOST-RESOURCES-MIB) and the interface table (IF-MIB) of one device, v2c or v3 (USM).

Built for throughput (docs/BENCHMARKS.md, "SNMP GETs per second"):

- requests go through the process's one :class:`~vigil.network.snmp_transport.SnmpTransport`
  (:mod:`vigil.network.snmp_engine`), so targets, credentials, the UDP socket and v3 engine
  discovery are set up once, not per sweep; its codec (:mod:`vigil.network.snmp_ber`) and
  USM (:mod:`vigil.network.snmp_usm`) cost ~0.1 ms of CPU per v3 request where pysnmp's
  cost ~0.9 ms;
- numeric OIDs as tuples and plain Python values: no MIB objects, no MIB lookups;
- a poll is one GET of the three system objects (and of the RAM row's size and use, that
  row known from the last poll), one GETBULK walk of the 2 HOST-RESOURCES columns (CPU
  loads, storage types) and one GETBULK walk of the 9 IF-MIB columns side by side: 3
  requests for a device whose tables did not change (4 the first time: the RAM row's GET
  on its own), instead of ~15 (a GET and a walk per column);
- an agent without ifXTable (no ifName, no 64-bit ifHC*Octets) costs one GETBULK walk more,
  of ifTable's ifDescr and 32-bit ifInOctets/ifOutOctets; an agent with it, none;
- a walk asks for as many rows as the device's table had the last time (plus one to see
  its end), so it takes one request and carries few varbinds past the table's end.

Counts of requests and varbinds are kept on the client for the benchmarks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from vigil.network import snmp_ber as ber
from vigil.network.snmp_ber import NoValue, Oid
from vigil.network.snmp_transport import SnmpError, SnmpTransport, Target

__all__ = ["SnmpClient", "SnmpError", "SnmpPoll", "oid"]

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
    "admin": "1.3.6.1.2.1.2.2.1.7",  # ifAdminStatus: 1 up, 2 down, 3 testing
    "oper": "1.3.6.1.2.1.2.2.1.8",  # ifOperStatus: 1 up, 2 down, …
    "in_octets": "1.3.6.1.2.1.31.1.1.1.6",  # ifHCInOctets (64-bit)
    "out_octets": "1.3.6.1.2.1.31.1.1.1.10",  # ifHCOutOctets (64-bit)
    "in_errors": "1.3.6.1.2.1.2.2.1.14",
    "out_errors": "1.3.6.1.2.1.2.2.1.20",
    "in_discards": "1.3.6.1.2.1.2.2.1.13",
    "out_discards": "1.3.6.1.2.1.2.2.1.19",
}
#: ifTable columns walked when an interface has no ifName or no 64-bit counters (agents
#: without ifXTable): its name from ifDescr, its octets from the 32-bit counters.
IF_FALLBACK_COLUMNS = {
    "descr": "1.3.6.1.2.1.2.2.1.2",  # ifDescr
    "in_octets": "1.3.6.1.2.1.2.2.1.10",  # ifInOctets (32-bit)
    "out_octets": "1.3.6.1.2.1.2.2.1.16",  # ifOutOctets (32-bit)
}
#: The interface value saying its octet counters are the 32-bit ones (absent: 64-bit).
OCTETS_BITS = "octets_bits"


@dataclass
class SnmpPoll:
    at: datetime
    uptime_s: float
    name: str
    descr: str
    cpu_pct: float | None = None
    mem_pct: float | None = None
    #: ifName -> column name -> value (admin and oper status, counters; ``octets_bits``:
    #: 32.0 when the octets are the 32-bit ifInOctets/ifOutOctets)
    interfaces: dict[str, dict[str, float]] = field(default_factory=dict)


#: The columns of a poll's table walk: CPU, memory, then the IF-MIB ones in IF_COLUMNS' order.
HOST_COLUMNS = (HR_PROCESSOR_LOAD, HR_STORAGE_TYPE)
#: Pages of one walk before it is taken for a looping agent.
MAX_PAGES = 1000
#: Most repetitions asked for per column in one GETBULK.
MAX_REPETITIONS = 50
#: Per (target, first column): the most rows a column of that walk had last time.
#: The next walk asks for that many + 1 repetitions (the +1 sees the column end), so an
#: unchanged table takes one request and little beyond its end. Bounded by the devices.
_rows_seen: dict[tuple[str, Oid], int] = {}
#: Per target: the hrStorage row of its RAM at the last poll.
_ram_rows: dict[str, Oid] = {}


def oid(dotted: str) -> Oid:
    return tuple(int(part) for part in dotted.split("."))


def text(value: Any) -> str:
    """An OCTET STRING's text (agents send UTF-8 or ASCII; anything else is replaced)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None or isinstance(value, NoValue) else str(value)


class SnmpClient:
    """Requests through ``engine``; used only on the engine's event loop (a sweep's
    coroutines run there, see :mod:`vigil.network.snmp_engine`). Cheap to make: it holds
    the per-sweep settings and counters, the engine holds the state."""

    def __init__(
        self,
        engine: SnmpTransport,
        timeout: float = 1.0,
        retries: int = 1,
        max_varbinds: int = 60,
    ):
        self.engine = engine
        self.timeout, self.retries = timeout, retries
        #: GETBULK asks for max(1, max_varbinds // columns) repetitions of each column.
        self.max_varbinds = max_varbinds
        self.requests = 0  # request PDUs answered
        self.varbinds = 0  # varbinds in those answers

    async def target(self, address: str, port: int, secret: Mapping[str, Any]) -> Target:
        """The engine's target for (address, port, credentials), made on first use."""
        return await self.engine.target(address, port, secret)

    async def _request(
        self, target: Target, tag: int, oids: Sequence[Oid], a: int = 0, b: int = 0
    ) -> list[tuple[Oid, Any]]:
        answer = await self.engine.request(
            target, tag, oids, a, b, timeout=self.timeout, retries=self.retries
        )
        self.requests += 1
        self.varbinds += len(answer.varbinds)
        return answer.varbinds

    async def get(self, target: Target, oids: Sequence[Oid]) -> dict[Oid, Any]:
        """One GET of every OID in ``oids``: OID -> value."""
        return dict(await self._request(target, ber.GET, oids))

    async def walk(self, target: Target, columns: Sequence[Oid]) -> list[dict[str, Any]]:
        """Every column of ``columns`` walked side by side by GETBULK: per column, row
        index (the OID's suffix, dotted) -> value. A column leaves the walk at its first
        OID outside it (or at the end of the MIB); the others go on where they were.
        Columns of one table are best walked together (they end at the same row)."""
        rows: list[dict[str, Any]] = [{} for _ in columns]
        cursor = list(columns)
        active = list(range(len(columns)))
        key = (target.key, columns[0])
        seen = _rows_seen.get(key)
        for _page in range(MAX_PAGES):
            if not active:
                break
            if seen is not None:  # the rows still expected, and one to see the end
                left = seen - min(len(rows[j]) for j in active)
                repetitions = max(1, min(MAX_REPETITIONS, left + 1))
            else:
                repetitions = max(1, min(MAX_REPETITIONS, self.max_varbinds // len(active)))
            binds = await self._request(
                target, ber.GETBULK, [cursor[j] for j in active], 0, repetitions
            )
            if not binds:
                return rows
            finished: set[int] = set()
            for k, (name, value) in enumerate(binds):  # row after row of len(active) columns
                j = active[k % len(active)]
                if j in finished:
                    continue
                column, at = columns[j], name
                if isinstance(value, NoValue) or at[: len(column)] != column or at <= cursor[j]:
                    finished.add(j)
                    continue
                rows[j][".".join(map(str, at[len(column) :]))] = value
                cursor[j] = at
            active = [j for j in active if j not in finished]
        else:
            raise SnmpError(f"walk not finished after {MAX_PAGES} requests")
        _rows_seen[key] = max(len(r) for r in rows)
        return rows

    async def poll(self, address: str, port: int, secret: Mapping[str, Any]) -> SnmpPoll:
        target = await self.target(address, port, secret)
        at = datetime.now(UTC)
        # The RAM row's size and use ride in the system GET when the row is known from the
        # last poll (checked against this poll's storage types below).
        known_row = _ram_rows.get(target.key)
        first = [_SYS_UPTIME, _SYS_NAME, _SYS_DESCR]
        if known_row is not None:
            first += [_HR_STORAGE_SIZE + known_row, _HR_STORAGE_USED + known_row]
        system = await self.get(target, first)
        try:
            uptime = int(system[_SYS_UPTIME]) / 100
        except (KeyError, TypeError, ValueError) as exc:
            raise SnmpError(f"no sysUpTime in the answer ({exc})") from None
        poll = SnmpPoll(
            at=at,
            uptime_s=uptime,
            name=text(system.get(_SYS_NAME)),
            descr=text(system.get(_SYS_DESCR)),
        )
        # One request of a device at a time: what is in flight is bounded by the devices
        # in flight, so a busy process answers its backlog before the requests time out.
        loads, types = await self.walk(target, _HOST_WALK)
        cpu = [int(v) for v in loads.values()]
        if cpu:
            poll.cpu_pct = sum(cpu) / len(cpu)
        ram = [i for i, t in types.items() if t == _HR_STORAGE_RAM]
        if ram:  # its size and use by GET rather than two columns of every storage row
            row = oid(ram[0])
            size_oid, used_oid = _HR_STORAGE_SIZE + row, _HR_STORAGE_USED + row
            memory = system if row == known_row else await self.get(target, (size_oid, used_oid))
            _ram_rows[target.key] = row
            try:
                size, used = int(memory[size_oid]), int(memory[used_oid])
            except (KeyError, TypeError, ValueError):
                size = used = 0  # gone since (noSuchInstance): no memory figure
            if size:
                poll.mem_pct = 100.0 * used / size
        else:
            _ram_rows.pop(target.key, None)
        poll.interfaces = await self._interfaces(target)
        return poll

    async def _interfaces(self, target: Target) -> dict[str, dict[str, float]]:
        """The IF-MIB walk; a second walk of ifTable's ifDescr and 32-bit octet counters
        only when some interface lacks its ifName or its 64-bit counters."""
        columns = dict(zip(IF_COLUMNS, await self.walk(target, _IF_WALK), strict=True))
        names = columns.pop("name")
        indexes = sorted(set(names) | set(columns["oper"]), key=oid)
        hc = ("in_octets", "out_octets")

        def has_hc(index: str) -> bool:
            return all(index in columns[k] for k in hc)

        fallback: dict[str, dict[str, Any]] = {}
        if any(i not in names or not has_hc(i) for i in indexes):
            walked = await self.walk(target, _IF_FALLBACK_WALK)
            fallback = dict(zip(IF_FALLBACK_COLUMNS, walked, strict=True))
        out: dict[str, dict[str, float]] = {}
        for index in indexes:
            values = {k: float(int(col[index])) for k, col in columns.items() if index in col}
            if not has_hc(index) and all(index in fallback[k] for k in hc):
                values.update({k: float(int(fallback[k][index])) for k in hc})
                values[OCTETS_BITS] = 32.0
            if index in names:
                name = text(names[index])
            else:
                name = text(fallback.get("descr", {}).get(index))
            out[name or f"if{index}"] = values
        return out


_SYS_UPTIME, _SYS_NAME, _SYS_DESCR = oid(SYS_UPTIME), oid(SYS_NAME), oid(SYS_DESCR)
_HR_STORAGE_RAM = oid(HR_STORAGE_RAM)
_HR_STORAGE_SIZE, _HR_STORAGE_USED = oid(HR_STORAGE_SIZE), oid(HR_STORAGE_USED)
_HOST_WALK = tuple(oid(c) for c in HOST_COLUMNS)
_IF_WALK = tuple(oid(c) for c in IF_COLUMNS.values())
_IF_FALLBACK_WALK = tuple(oid(c) for c in IF_FALLBACK_COLUMNS.values())
