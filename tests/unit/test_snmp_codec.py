"""The collector's SNMP codec and USM against an independent implementation: pysnmp and
pyasn1 (what the collector used before, kept as a test dependency for this) encode and
decode the same messages; RFC 3414's published key vectors check the key localisation."""

from __future__ import annotations

from typing import Any

import pysnmp.proto.secmod.rfc3414  # noqa: F401  (first: pysnmp's own import order)
import pytest
from pyasn1.codec.ber import decoder, encoder  # type: ignore[import-untyped]
from pyasn1.type import univ  # type: ignore[import-untyped]
from pysnmp.proto.api import v2c
from pysnmp.proto.secmod.eso.priv import aes256
from pysnmp.proto.secmod.rfc3414 import localkey
from pysnmp.proto.secmod.rfc7860.auth import hmacsha2

from vigil.network import snmp_ber as ber
from vigil.network.snmp_usm import AUTH, LocalKeys, User, localise, passphrase_key

BIG_ARCS = (1, 3, 6, 1, 4, 1, 2021, 4294967295, 128, 16383, 16384, 0)


def _pysnmp_response(binds: list[tuple[str, Any]], request_id: int = 4711) -> bytes:
    pdu = v2c.ResponsePDU()
    v2c.apiPDU.set_defaults(pdu)
    v2c.apiPDU.set_request_id(pdu, request_id)
    v2c.apiPDU.set_varbinds(pdu, binds)
    message = v2c.Message()
    v2c.apiMessage.set_defaults(message)
    v2c.apiMessage.set_community(message, "public")
    v2c.apiMessage.set_pdu(message, pdu)
    return bytes(encoder.encode(message))


def _decode_v2c(wire: bytes) -> tuple[bytes, ber.Pdu]:
    _tag, i, _end = ber.header(wire, 0)
    version, i = ber.read_int(wire, i)
    assert version == 1
    community, i = ber.read_octets(wire, i)
    return community, ber.read_pdu(wire, i)


def test_answers_encoded_by_pysnmp_decode_to_the_values_sent() -> None:
    wire = _pysnmp_response(
        [
            ("1.3.6.1.2.1.1.3.0", v2c.TimeTicks(4_294_967_295)),
            ("1.3.6.1.2.1.1.5.0", v2c.OctetString("router-1 ✓".encode())),
            ("1.3.6.1.2.1.31.1.1.1.6.2", v2c.Counter64(2**64 - 1)),
            ("1.3.6.1.2.1.2.2.1.14.2", v2c.Counter32(2**32 - 1)),
            ("1.3.6.1.2.1.25.2.3.1.5.1", v2c.Gauge32(128)),
            ("1.3.6.1.2.1.2.2.1.8.1", v2c.Integer(-2_147_483_648)),
            ("1.3.6.1.2.1.25.2.3.1.2.1", v2c.ObjectIdentifier(BIG_ARCS)),
            ("1.3.6.1.2.1.4.20.1.1.1", v2c.IpAddress("192.0.2.250")),
            ("1.3.6.1.2.1.1.9.0", v2c.NoSuchInstance("")),
            ("1.3.6.1.2.1.1.10.0", v2c.NoSuchObject("")),
            (".".join(map(str, BIG_ARCS)), v2c.EndOfMibView("")),
            ("1.3.6.1.2.1.1.4.0", v2c.OctetString(b"x" * 300)),  # a long form length
        ]
    )
    community, answer = _decode_v2c(wire)
    assert community == b"public"
    assert (answer.tag, answer.request_id, answer.error_status) == (ber.RESPONSE, 4711, 0)
    values = [value for _name, value in answer.varbinds]
    assert values[:6] == [4_294_967_295, "router-1 ✓".encode(), 2**64 - 1, 2**32 - 1, 128, -(2**31)]
    assert values[6] == BIG_ARCS
    assert str(values[7]) == "192.0.2.250"
    assert values[8:11] == [ber.NO_SUCH_INSTANCE, ber.NO_SUCH_OBJECT, ber.END_OF_MIB_VIEW]
    assert values[11] == b"x" * 300
    assert answer.varbinds[10][0] == BIG_ARCS


@pytest.mark.parametrize("tag", [ber.GET, ber.GETNEXT, ber.GETBULK])
def test_requests_encoded_here_decode_in_pyasn1_to_the_same_fields(tag: int) -> None:
    oids = [(1, 3, 6, 1, 2, 1, 1, 3, 0), BIG_ARCS, (2, 999, 3)]
    wire = ber.tlv(
        ber.SEQUENCE,
        ber.integer(1) + ber.octets(b"c0mm") + ber.pdu(tag, 2**31 - 1, oids, 0, 25),
    )
    message, rest = decoder.decode(wire, asn1Spec=v2c.Message())
    assert rest == b""
    assert str(v2c.apiMessage.get_community(message)) == "c0mm"
    pdu = v2c.apiMessage.get_pdu(message)
    assert int(v2c.apiPDU.get_request_id(pdu)) == 2**31 - 1
    assert [tuple(name) for name, _ in v2c.apiPDU.get_varbinds(pdu)] == oids
    if tag == ber.GETBULK:
        assert int(pdu["max-repetitions"]) == 25
        assert int(pdu["non-repeaters"]) == 0


@pytest.mark.parametrize("value", [0, 1, 127, 128, 255, 256, 2**31 - 1, 2**63, -1, -128, -129])
def test_integers_decode_in_pyasn1_and_back(value: int) -> None:
    ours = ber.integer(value)
    assert int(decoder.decode(ours, asn1Spec=univ.Integer())[0]) == value
    assert len(ours) <= len(encoder.encode(univ.Integer(value)))  # never longer than theirs
    theirs = bytes(encoder.encode(univ.Integer(value)))
    _tag, start, end = ber.header(theirs, 0)
    assert ber.value(ber.INTEGER, theirs[start:end]) == value


@pytest.mark.parametrize(
    "damaged",
    [
        b"",
        b"\x30",
        b"\x30\x05\x02\x01\x01",  # a length past the end
        b"\x30\x84\xff\xff\xff\xff\x02",
        b"\x30\x03\x04\x01\x01",  # an OCTET STRING where the version goes
    ],
)
def test_damaged_octets_raise_ber_errors_only(damaged: bytes) -> None:
    with pytest.raises(ber.BerError):
        _decode_v2c(damaged)


def test_rfc3414_key_localisation_vectors() -> None:
    """RFC 3414 A.3.1 (MD5) and A.3.2 (SHA): password "maplesyrup", engine id
    00…02."""
    engine_id = bytes.fromhex("000000000000000000000002")
    md5, sha1 = AUTH["MD5"][0], AUTH["SHA"][0]
    ku = passphrase_key("maplesyrup", md5)
    assert ku.hex() == "9faf3283884e92834ebc9847d8edd963"
    assert localise(ku, engine_id, md5).hex() == "526f5eed9fcce26f8964c2930787d82b"
    ku = passphrase_key("maplesyrup", sha1)
    assert ku.hex() == "9fb5cc0381497b3793528939ff788d5d79145211"
    assert localise(ku, engine_id, sha1).hex() == "6695febc9288e36282235fc7151f128497b38f3f"


@pytest.mark.parametrize("auth", ["SHA224", "SHA256", "SHA384", "SHA512"])
def test_sha2_keys_match_pysnmps(auth: str) -> None:
    engine_id = bytes.fromhex("80001f8880a1b2c3d4e5f60718")
    hash_ = AUTH[auth][0]
    ours = localise(passphrase_key("auth-pass-123", hash_), engine_id, hash_)
    theirs = localkey.password_to_key(b"auth-pass-123", univ.OctetString(engine_id), hash_)
    assert ours == bytes(theirs)
    assert AUTH[auth][1] == hmacsha2.HmacSha2.DIGEST_LENGTH[_pysnmp_sha2_oid(auth)]


def _pysnmp_sha2_oid(auth: str) -> tuple[int, ...]:
    names = {"SHA224": "sha224", "SHA256": "sha256", "SHA384": "sha384", "SHA512": "sha512"}
    for service, algorithm in hmacsha2.HmacSha2.HASH_ALGORITHM.items():
        if algorithm().name == names[auth]:
            return tuple(service)
    raise AssertionError(auth)


def test_aes256_key_extension_matches_pysnmps_blumenthal() -> None:
    """A SHA-1 key (20 octets) stretched to AES-256's 32, as Blumenthal's draft does."""
    engine_id = bytes.fromhex("80001f8880a1b2c3d4e5f60718")
    user = User.from_secret(
        {
            "user": "u",
            "auth_protocol": "SHA",
            "auth_key": "auth-pass-123",
            "priv_protocol": "AES256",
            "priv_key": "priv-pass-123",
        }
    )
    ours = LocalKeys(user, engine_id)._priv_key
    ku = localkey.hash_passphrase(b"priv-pass-123", AUTH["SHA"][0])
    theirs = aes256.AesBlumenthal256().localize_key(
        (1, 3, 6, 1, 6, 3, 10, 1, 1, 3), ku, univ.OctetString(engine_id)
    )  # usmHMACSHAAuthProtocol
    assert len(ours) == 32
    assert ours == bytes(theirs)


@pytest.mark.parametrize("priv", ["DES", "AES", "AES192", "AES256"])
def test_privacy_round_trips_and_a_wrong_key_does_not_decrypt(priv: str) -> None:
    secret = {
        "user": "u",
        "auth_protocol": "SHA256",
        "auth_key": "auth-pass-123",
        "priv_protocol": priv,
        "priv_key": "priv-pass-123",
    }
    keys = LocalKeys(User.from_secret(secret), b"\x80\x00\x1f\x88\x04engine")
    plain = ber.tlv(ber.SEQUENCE, ber.octets(b"") + ber.octets(b"") + ber.pdu(ber.GET, 9, ()))
    cipher, salt = keys.encrypt(plain, 3, 12345)
    assert cipher[: len(plain)] != plain
    assert keys.decrypt(cipher, salt, 3, 12345)[: len(plain)] == plain
    other = LocalKeys(User.from_secret({**secret, "priv_key": "another-key"}), b"x" * 9)
    assert other.decrypt(cipher, salt, 3, 12345)[: len(plain)] != plain
    _, next_salt = keys.encrypt(plain, 3, 12345)
    assert next_salt != salt  # never the same IV twice


def test_bad_credentials_are_refused_before_any_request() -> None:
    with pytest.raises(ValueError, match="privacy needs authentication"):
        User.from_secret({"user": "u", "priv_protocol": "AES", "priv_key": "12345678"})
    with pytest.raises(ValueError, match="unknown authentication protocol"):
        User.from_secret({"user": "u", "auth_protocol": "SHA1024", "auth_key": "12345678"})
    with pytest.raises(ValueError, match="empty passphrase"):
        User.from_secret({"user": "u", "auth_protocol": "SHA", "auth_key": ""})
