"""How many requests per second the local snmpd itself answers, so the collector's figure
(bench/snmp_gets.py) can be read against it. A minimal client: one UDP socket, a v2c GET
(or a GET of several OIDs) pre-encoded by hand, only the request id changed per request,
replies counted without decoding, ``--window`` requests kept in flight; ``--procs`` such
clients in parallel processes (so the client is not the limit). Starts Debian's snmpd on a
free loopback port as the tests do.

    .venv/bin/python bench/snmpd_ceiling.py [--seconds 5] [--window 32] [--procs 1 2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.snmpd import COMMUNITY, snmpd

SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
SYSTEM_OIDS = ("1.3.6.1.2.1.1.3.0", "1.3.6.1.2.1.1.5.0", "1.3.6.1.2.1.1.1.0")


def _tlv(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes((tag, n)) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(size))) + size + body


def _oid(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    out = bytearray([parts[0] * 40 + parts[1]])
    for part in parts[2:]:
        chunk, rest = [part & 0x7F], part >> 7
        while rest:
            chunk.append(0x80 | (rest & 0x7F))
            rest >>= 7
        out += bytes(reversed(chunk))
    return _tlv(0x06, bytes(out))


def get_request(request_id: int, oids: tuple[str, ...], community: str = COMMUNITY) -> bytes:
    """A v2c GetRequest; the request id is a 4-byte INTEGER so it can be patched in place."""
    binds = b"".join(_tlv(0x30, _oid(o) + b"\x05\x00") for o in oids)
    pdu = _tlv(0x02, request_id.to_bytes(4, "big")) + b"\x02\x01\x00\x02\x01\x00"
    pdu += _tlv(0x30, binds)
    return _tlv(0x30, b"\x02\x01\x01" + _tlv(0x04, community.encode()) + _tlv(0xA0, pdu))


def client(
    port: int, oids: tuple[str, ...], window: int, seconds: float, out: multiprocessing.Queue[int]
) -> None:
    template = bytearray(get_request(0x01000000, oids))
    at = template.index(b"\x02\x04\x01\x00\x00\x00") + 2  # the request id's 4 bytes
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(("127.0.0.1", port))
    sock.settimeout(0.5)
    next_id = 0x01000000

    def send() -> None:
        nonlocal next_id
        next_id += 1
        template[at : at + 4] = next_id.to_bytes(4, "big")
        sock.send(template)

    for _ in range(window):
        send()
    answered = 0
    stop = time.perf_counter() + seconds
    while time.perf_counter() < stop:
        try:
            sock.recv(4096)
        except TimeoutError:  # a lost request: refill the window
            send()
            continue
        answered += 1
        send()
    out.put(answered)


def measure(port: int, oids: tuple[str, ...], window: int, procs: int, seconds: float) -> float:
    queue: multiprocessing.Queue[int] = multiprocessing.Queue()
    workers = [
        multiprocessing.Process(target=client, args=(port, oids, window, seconds, queue))
        for _ in range(procs)
    ]
    for w in workers:
        w.start()
    total = sum(queue.get() for _ in workers)
    for w in workers:
        w.join()
    return total / seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--window", type=int, default=32)
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    with snmpd() as agent:
        for oids in ((SYS_UPTIME,), SYSTEM_OIDS):
            for procs in args.procs:
                rate = measure(agent.port, oids, args.window, procs, args.seconds)
                print(
                    f"{len(oids)} OID(s) per GET, {procs} client process(es), window "
                    f"{args.window}: {rate:8.0f} requests/s = {rate * len(oids):8.0f} varbinds/s"
                )


if __name__ == "__main__":
    main()
