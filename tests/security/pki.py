"""A throw-away PKI for TLS tests, generated at test time with ``cryptography``.

:func:`make_pki` writes, into one directory, PEM files for:

- ``ca``: the test CA; ``other_ca``: an unrelated CA (the "wrong CA" case);
- ``server``: signed by ``ca`` for ``localhost`` and ``127.0.0.1``;
- ``server_other_host``: signed by ``ca`` for ``other-host.example`` only;
- ``server_expired``: signed by ``ca`` for ``localhost``/``127.0.0.1``, expired yesterday;
- ``client``: a client certificate (CN ``gateway``) signed by ``ca``, for mutual TLS;
- ``client_other_ca``: a client certificate signed by ``other_ca``.

Keys are EC P-256 (fast to generate) and written unencrypted with mode 600.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class CertFiles:
    """A certificate and its private key on disk."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class Pki:
    """Every file of the test PKI."""

    directory: Path
    ca: CertFiles
    other_ca: CertFiles
    server: CertFiles
    server_other_host: CertFiles
    server_expired: CertFiles
    client: CertFiles
    client_other_ca: CertFiles


@dataclass(frozen=True)
class _Issuer:
    name: x509.Name
    key: ec.EllipticCurvePrivateKey


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write(
    directory: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> CertFiles:
    cert_path = directory / f"{stem}.crt"
    key_path = directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return CertFiles(cert_path, key_path)


def make_ca(directory: Path, stem: str, common_name: str) -> tuple[CertFiles, _Issuer]:
    """A self-signed CA certificate valid for a day either side of now."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _write(directory, stem, cert, key), _Issuer(name, key)


def issue(
    directory: Path,
    stem: str,
    issuer: _Issuer,
    *,
    common_name: str,
    dns_names: tuple[str, ...] = (),
    ip_addresses: tuple[str, ...] = (),
    client: bool = False,
    expired: bool = False,
) -> CertFiles:
    """A leaf certificate signed by ``issuer`` (server unless ``client``)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    if expired:
        not_before, not_after = now - dt.timedelta(days=30), now - dt.timedelta(days=1)
    else:
        not_before, not_after = now - dt.timedelta(hours=1), now + dt.timedelta(days=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(issuer.name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    )
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(issuer.key, hashes.SHA256())
    return _write(directory, stem, cert, key)


def make_pki(directory: Path) -> Pki:
    """Generate the whole test PKI into ``directory`` (see the module docstring)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_issuer = make_ca(directory, "ca", "edge-gateway test CA")
    other_ca, other_issuer = make_ca(directory, "other_ca", "some other CA")
    return Pki(
        directory=directory,
        ca=ca,
        other_ca=other_ca,
        server=issue(
            directory,
            "server",
            ca_issuer,
            common_name="localhost",
            dns_names=("localhost",),
            ip_addresses=("127.0.0.1",),
        ),
        server_other_host=issue(
            directory,
            "server_other_host",
            ca_issuer,
            common_name="other-host.example",
            dns_names=("other-host.example",),
        ),
        server_expired=issue(
            directory,
            "server_expired",
            ca_issuer,
            common_name="localhost",
            expired=True,
            dns_names=("localhost",),
            ip_addresses=("127.0.0.1",),
        ),
        client=issue(directory, "client", ca_issuer, common_name="gateway", client=True),
        client_other_ca=issue(
            directory, "client_other_ca", other_issuer, common_name="gateway", client=True
        ),
    )
