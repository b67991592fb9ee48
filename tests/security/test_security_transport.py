"""Transport security: a verifying TLS client against a real TLS server on 127.0.0.1 with a CA made
here, credentials from an owner-only secrets file or a keyring backend, and log redaction."""
from __future__ import annotations

import datetime as dt
import io
import ipaddress
import logging
import os
import socket
import ssl
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from keyrings.alt.file import PlaintextKeyring

from app.core.errors import UserError
from app.security.transport import SecretRedactor, client_tls_context, load_credentials


def _cert(subject: str, key, issuer_name: x509.Name, issuer_key, ca: bool) -> x509.Certificate:
    now = dt.datetime.now(dt.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(issuer_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                                        critical=True)
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A self-signed CA and a server certificate for localhost/127.0.0.1 signed by it."""
    d = tmp_path_factory.mktemp("pki")
    ca_key, srv_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ESMS test CA")])
    ca = _cert("ESMS test CA", ca_key, ca_name, ca_key, ca=True)
    srv = _cert("localhost", srv_key, ca_name, ca_key, ca=False)
    pem = serialization.Encoding.PEM
    (d / "ca.pem").write_bytes(ca.public_bytes(pem))
    (d / "server.pem").write_bytes(srv.public_bytes(pem))
    (d / "server.key").write_bytes(srv_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    return d


@pytest.fixture
def tls_server(pki):
    """A TLS server on 127.0.0.1 that answers b"hello" to each connection; yields its port."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki / "server.pem", pki / "server.key")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)                          # accept() wakes up to notice `stop`
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                try:
                    with ctx.wrap_socket(conn, server_side=True) as tls:
                        tls.sendall(b"hello")
                except (ssl.SSLError, OSError):
                    pass                             # the client refused our certificate

    thread = threading.Thread(target=serve, name="tls-test-server")
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(timeout=5)
    listener.close()


def _talk(ctx: ssl.SSLContext, port: int, hostname: str = "localhost") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=hostname) as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
            return tls.recv(5)


def test_tls_client_verifies_the_server_with_the_site_ca(pki, tls_server):
    assert _talk(client_tls_context(pki / "ca.pem"), tls_server) == b"hello"


def test_tls_client_refuses_a_server_it_cannot_verify(tls_server):
    with pytest.raises(ssl.SSLCertVerificationError):
        _talk(client_tls_context(), tls_server)               # system trust store: test CA unknown


def test_tls_client_refuses_a_certificate_for_another_host(pki, tls_server):
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        _talk(client_tls_context(pki / "ca.pem"), tls_server, hostname="broker.example")


def test_tls_context_is_tls12_or_later_with_verification_on(pki):
    ctx = client_tls_context(pki / "ca.pem")
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert ctx.verify_mode is ssl.CERT_REQUIRED and ctx.check_hostname
    with pytest.raises(UserError, match="does not exist"):
        client_tls_context(pki / "missing.pem")


def _secrets(tmp_path, mode: int):
    path = tmp_path / "secrets.toml"
    path.write_text('[mqtt]\nusername = "site7"\npassword = "s3cr3t-Pa55"\n')
    os.chmod(path, mode)
    return path


def test_credentials_come_from_an_owner_only_secrets_file(tmp_path):
    creds = load_credentials("mqtt", _secrets(tmp_path, 0o600), keyring_backend=_empty_keyring(tmp_path))
    assert (creds.username, creds.password) == ("site7", "s3cr3t-Pa55")
    assert "s3cr3t" not in repr(creds)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_a_secrets_file_others_can_read_is_refused(tmp_path):
    with pytest.raises(UserError, match="chmod 600"):
        load_credentials("mqtt", _secrets(tmp_path, 0o640), keyring_backend=_empty_keyring(tmp_path))


def test_missing_credentials_name_where_they_were_looked_for(tmp_path):
    with pytest.raises(UserError, match=r"esms/broker.*secrets.toml"):
        load_credentials("broker", _secrets(tmp_path, 0o600), keyring_backend=_empty_keyring(tmp_path))


def _empty_keyring(tmp_path) -> PlaintextKeyring:
    backend = PlaintextKeyring()
    backend.file_path = str(tmp_path / "keyring.cfg")
    return backend


def test_the_keyring_wins_over_the_secrets_file(tmp_path):
    backend = _empty_keyring(tmp_path)
    backend.set_password("esms/mqtt", "username", "from-keyring")
    backend.set_password("esms/mqtt", "password", "kr-Pa55word")
    creds = load_credentials("mqtt", _secrets(tmp_path, 0o600), keyring_backend=backend)
    assert (creds.username, creds.password, creds.origin) == ("from-keyring", "kr-Pa55word", "keyring")


def test_loaded_secrets_and_password_fields_are_redacted_from_logs(tmp_path):
    redactor = SecretRedactor()
    creds = load_credentials("mqtt", _secrets(tmp_path, 0o600), keyring_backend=_empty_keyring(tmp_path),
                             redactor=redactor)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("esms.test.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    redactor.install(logger)
    try:
        logger.warning("connect failed for %s with %s", creds.username, creds.password)
        logger.warning("config: token=abc123 api_key: 'xyz' password = \"p w\"")
        try:
            raise ValueError(f"bad auth {creds.password}")
        except ValueError:
            logger.exception("broker said no")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "s3cr3t-Pa55" not in text and "abc123" not in text and "xyz" not in text and "p w" not in text
    assert "connect failed for site7 with ***" in text and "token=***" in text and "bad auth ***" in text
