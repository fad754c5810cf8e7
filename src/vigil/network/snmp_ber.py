"""The BER encoding of SNMP messages (RFC 3416 PDUs, RFC 1901 v2c and RFC 3412 v3
messages), just the types SNMP uses, values as plain Python objects.

Why not pyasn1 (through pysnmp): a generic ASN.1 codec builds a typed object per value and
checks constraints on each; an SNMPv3 GET answered costs pysnmp ~0.9 ms of CPU, two thirds
of it in pyasn1. SNMP needs a dozen tags and no schema, and this module decodes an answer in
tens of microseconds (docs/BENCHMARKS.md, "SNMP GETs per second").

Values decode to: ``int`` (INTEGER, Counter32, Gauge32, TimeTicks, Counter64), ``bytes``
(OCTET STRING, Opaque), ``Oid`` (OBJECT IDENTIFIER), :class:`IpAddress`, ``None`` (NULL)
and the three exceptions of a varbind (:data:`NO_SUCH_OBJECT`, :data:`NO_SUCH_INSTANCE`,
:data:`END_OF_MIB_VIEW`), instances of :class:`NoValue`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

Oid = tuple[int, ...]

INTEGER, OCTET_STRING, NULL, OBJECT_ID, SEQUENCE = 0x02, 0x04, 0x05, 0x06, 0x30
IP_ADDRESS, COUNTER32, GAUGE32, TIMETICKS, OPAQUE, COUNTER64 = 0x40, 0x41, 0x42, 0x43, 0x44, 0x46
GET, GETNEXT, RESPONSE, GETBULK, REPORT = 0xA0, 0xA1, 0xA2, 0xA5, 0xA8
_UNSIGNED = frozenset((COUNTER32, GAUGE32, TIMETICKS, COUNTER64))


class BerError(ValueError):
    """The octets are not a message this codec understands (truncated, a wrong tag)."""


class NoValue:
    """A varbind without a value: noSuchObject, noSuchInstance or endOfMibView."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW = (
    NoValue("noSuchObject"),
    NoValue("noSuchInstance"),
    NoValue("endOfMibView"),
)
_NO_VALUES = {0x80: NO_SUCH_OBJECT, 0x81: NO_SUCH_INSTANCE, 0x82: END_OF_MIB_VIEW}


@dataclass(frozen=True)
class IpAddress:
    octets: bytes

    def __str__(self) -> str:
        return ".".join(map(str, self.octets))


# -- encoding ---------------------------------------------------------------------------


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def tlv(tag: int, body: bytes) -> bytes:
    return bytes((tag,)) + _length(len(body)) + body


def integer(value: int, tag: int = INTEGER) -> bytes:
    """Two's complement, shortest form (an unsigned type gets a leading zero octet when
    its top bit is set, as BER wants)."""
    size = (value.bit_length() + 8) // 8 if value >= 0 else (value + 1).bit_length() // 8 + 1
    return tlv(tag, value.to_bytes(size, "big", signed=True))


def octets(value: bytes) -> bytes:
    return tlv(OCTET_STRING, value)


def object_id(value: Oid) -> bytes:
    if len(value) < 2:
        raise BerError(f"an OID has at least two arcs: {value}")
    body = bytearray()
    for arc in (40 * value[0] + value[1], *value[2:]):  # the first two arcs share one
        if arc < 0x80:
            body.append(arc)
            continue
        groups = []  # base 128, most significant first, all but the last with bit 8 set
        rest = arc
        while rest:
            groups.append(rest & 0x7F)
            rest >>= 7
        body += bytes(g | 0x80 for g in reversed(groups[1:])) + bytes((groups[0],))
    return tlv(OBJECT_ID, bytes(body))


_NULL = b"\x05\x00"


def pdu(tag: int, request_id: int, oids: Sequence[Oid], a: int = 0, b: int = 0) -> bytes:
    """A request PDU asking for ``oids`` (NULL values). ``a``/``b`` are error status/index,
    or for GETBULK non-repeaters/max-repetitions."""
    binds = b"".join(tlv(SEQUENCE, object_id(o) + _NULL) for o in oids)
    return tlv(tag, integer(request_id) + integer(a) + integer(b) + tlv(SEQUENCE, binds))


# -- decoding ---------------------------------------------------------------------------


def header(data: bytes, i: int) -> tuple[int, int, int]:
    """The TLV at ``i``: (tag, start of its value, end of its value)."""
    try:
        tag, n = data[i], data[i + 1]
        i += 2
        if n & 0x80:
            size = n & 0x7F
            if not 0 < size <= 4:
                raise BerError(f"unsupported length of {size} octets at {i}")
            n = int.from_bytes(data[i : i + size], "big")
            i += size
    except IndexError:
        raise BerError("truncated") from None
    end = i + n
    if end > len(data):
        raise BerError(f"a value of {n} octets runs past the end ({len(data)})")
    return tag, i, end


def expect(data: bytes, i: int, tag: int) -> tuple[int, int]:
    got, start, end = header(data, i)
    if got != tag:
        raise BerError(f"tag {got:#04x} at {i}, expected {tag:#04x}")
    return start, end


def read_int(data: bytes, i: int) -> tuple[int, int]:
    """An INTEGER at ``i``: (value, index after it)."""
    start, end = expect(data, i, INTEGER)
    return int.from_bytes(data[start:end], "big", signed=True), end


def read_octets(data: bytes, i: int) -> tuple[bytes, int]:
    start, end = expect(data, i, OCTET_STRING)
    return data[start:end], end


def _oid(body: bytes) -> Oid:
    arcs: list[int] = []
    arc = 0
    for b in body:
        arc = (arc << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(arc)
            arc = 0
    if not arcs:
        raise BerError("an empty OID")
    first = arcs[0]
    head = (first // 40, first % 40) if first < 80 else (2, first - 80)
    return (*head, *arcs[1:])


def value(tag: int, body: bytes) -> Any:
    if tag == INTEGER:
        return int.from_bytes(body, "big", signed=True)
    if tag in _UNSIGNED:
        return int.from_bytes(body, "big")
    if tag in (OCTET_STRING, OPAQUE):
        return body
    if tag == OBJECT_ID:
        return _oid(body)
    if tag == NULL:
        return None
    if tag == IP_ADDRESS:
        return IpAddress(body)
    if tag in _NO_VALUES:
        return _NO_VALUES[tag]
    raise BerError(f"unknown value type {tag:#04x}")


@dataclass
class Pdu:
    tag: int
    request_id: int
    error_status: int
    error_index: int
    varbinds: list[tuple[Oid, Any]]


def read_pdu(data: bytes, i: int) -> Pdu:
    tag, _start, end = header(data, i)
    request_id, i = read_int(data, _start)
    error_status, i = read_int(data, i)
    error_index, i = read_int(data, i)
    i, binds_end = expect(data, i, SEQUENCE)
    varbinds: list[tuple[Oid, Any]] = []
    while i < binds_end:
        i, bind_end = expect(data, i, SEQUENCE)
        start, i = expect(data, i, OBJECT_ID)
        name = _oid(data[start:i])
        vtag, start, i = header(data, i)
        varbinds.append((name, value(vtag, data[start:i])))
        i = bind_end
    if binds_end > end:
        raise BerError("varbinds run past their PDU")
    return Pdu(tag, request_id, error_status, error_index, varbinds)
