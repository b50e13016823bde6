"""client_ssl_context: secure defaults and one-line errors for files that cannot be used."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from gateway.config import TlsConfig
from gateway.security.tls import TlsSetupError, client_ssl_context, redis_ssl_kwargs
from tests.security.pki import Pki


def _config(**paths: Path) -> TlsConfig:
    # model_construct: bypass TlsConfig's own file checks to reach ours (files can change
    # between check-config and the connection).
    return TlsConfig.model_construct(check_hostname=True, **paths)  # type: ignore[arg-type]


def test_defaults_are_secure(pki: Pki) -> None:
    for cfg in (None, TlsConfig(ca_file=pki.ca.cert)):
        context = client_ssl_context(cfg)
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname
        assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_a_ca_file_is_the_only_trust_anchor(pki: Pki) -> None:
    context = client_ssl_context(TlsConfig(ca_file=pki.ca.cert))
    subjects = [str(ca["subject"]) for ca in context.get_ca_certs()]
    assert subjects == ["((('commonName', 'edge-gateway test CA'),),)"]


def test_client_certificate_is_loaded(pki: Pki) -> None:
    tls = TlsConfig(ca_file=pki.ca.cert, cert_file=pki.client.cert, key_file=pki.client.key)
    assert client_ssl_context(tls).verify_mode == ssl.CERT_REQUIRED


def test_hostname_check_needs_both_switches(pki: Pki) -> None:
    assert not client_ssl_context(
        TlsConfig(ca_file=pki.ca.cert, check_hostname=False)
    ).check_hostname
    assert not client_ssl_context(None, server_hostname_check=False).check_hostname


def test_missing_ca_file(tmp_path: Path) -> None:
    with pytest.raises(TlsSetupError, match=r"^tls.ca_file '.*nope.pem' cannot be read: No such"):
        client_ssl_context(_config(ca_file=tmp_path / "nope.pem"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_ca_file(pki: Pki, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(pki.ca.cert.read_bytes())
    ca.chmod(0)
    with pytest.raises(TlsSetupError, match="cannot be read: Permission denied"):
        client_ssl_context(_config(ca_file=ca))


def test_ca_file_that_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(TlsSetupError, match="cannot be read: Is a directory"):
        client_ssl_context(_config(ca_file=tmp_path))


def test_ca_file_that_is_not_pem(tmp_path: Path) -> None:
    junk = tmp_path / "ca.pem"
    junk.write_text("hello\n")
    with pytest.raises(TlsSetupError, match="holds no PEM certificate"):
        client_ssl_context(_config(ca_file=junk))


def test_key_of_another_certificate(pki: Pki) -> None:
    with pytest.raises(TlsSetupError, match=r"is not the private key of tls\.cert_file"):
        client_ssl_context(TlsConfig(cert_file=pki.client.cert, key_file=pki.server.key))


def test_cert_file_that_is_not_pem(pki: Pki, tmp_path: Path) -> None:
    junk = tmp_path / "client.crt"
    junk.write_text("not a certificate\n")
    with pytest.raises(TlsSetupError, match="holds no PEM certificate") as caught:
        client_ssl_context(TlsConfig(cert_file=junk, key_file=pki.client.key))
    assert "\n" not in str(caught.value)


def test_key_file_that_is_not_pem(pki: Pki, tmp_path: Path) -> None:
    junk = tmp_path / "client.key"
    junk.write_text("not a key\n")
    with pytest.raises(TlsSetupError, match="holds no PEM private key"):
        client_ssl_context(TlsConfig(cert_file=pki.client.cert, key_file=junk))


def test_encrypted_key_is_refused_without_a_prompt(pki: Pki, tmp_path: Path) -> None:
    key = serialization.load_pem_private_key(pki.client.key.read_bytes(), password=None)
    encrypted = tmp_path / "client.key"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    with pytest.raises(TlsSetupError, match="is encrypted"):
        client_ssl_context(TlsConfig(cert_file=pki.client.cert, key_file=encrypted))


def test_redis_kwargs_match_the_context(pki: Pki) -> None:
    tls = TlsConfig(ca_file=pki.ca.cert, cert_file=pki.client.cert, key_file=pki.client.key)
    assert redis_ssl_kwargs(tls) == {
        "ssl_cert_reqs": "required",
        "ssl_check_hostname": True,
        "ssl_min_version": ssl.TLSVersion.TLSv1_2,
        "ssl_ca_certs": str(pki.ca.cert),
        "ssl_certfile": str(pki.client.cert),
        "ssl_keyfile": str(pki.client.key),
    }
    assert redis_ssl_kwargs(None, server_hostname_check=False)["ssl_check_hostname"] is False


def test_redis_kwargs_check_the_files_first(tmp_path: Path) -> None:
    with pytest.raises(TlsSetupError, match=r"tls\.ca_file"):
        redis_ssl_kwargs(_config(ca_file=tmp_path / "missing.pem"))
