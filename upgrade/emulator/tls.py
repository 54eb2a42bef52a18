"""A self-signed certificate for the emulator's ``--tls``, kept in the state directory.

The certificate is its own CA (``CA:TRUE``) for ``localhost``, ``127.0.0.1`` and
``::1`` (and the listening host), so a client can use ``emulator-cert.pem`` as
its CA bundle.  It is made once per state directory with the ``cryptography``
package when installed, else with the ``openssl`` command, and reused after.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import subprocess
from pathlib import Path

from upgrade.errors import UpgradeError

CERT_FILE = "emulator-cert.pem"
KEY_FILE = "emulator-key.pem"
_CN = "nsxt-upgrade NSX-T emulator"


def ensure_certificate(state_dir: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """``(cert, key)`` in ``state_dir``: the existing pair, or a new self-signed one."""
    cert, key = state_dir / CERT_FILE, state_dir / KEY_FILE
    if cert.is_file() and key.is_file():
        return cert, key
    names = sorted({"localhost", "127.0.0.1", "::1", host})
    try:
        _with_cryptography(cert, key, names)
    except ImportError:
        _with_openssl(cert, key, names)
    return cert, key


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _with_cryptography(cert_path: Path, key_path: Path, names: list[str]) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, _CN)])
    now = datetime.datetime.now(datetime.UTC)
    alt: list[x509.GeneralName] = [
        x509.IPAddress(ipaddress.ip_address(n)) if _is_ip(n) else x509.DNSName(n) for n in names
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(key_path, key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _write_key(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _with_openssl(cert: Path, key: Path, names: list[str]) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise UpgradeError("--tls needs the cryptography package or the openssl command")
    alt = ",".join(f"IP:{n}" if _is_ip(n) else f"DNS:{n}" for n in names)
    command = [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
               "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out", str(cert),
               "-days", "825", "-subj", f"/CN={_CN}", "-addext", f"subjectAltName={alt}",
               "-addext", "basicConstraints=critical,CA:TRUE",
               "-addext", "keyUsage=critical,digitalSignature,keyCertSign,cRLSign",
               "-addext", "extendedKeyUsage=serverAuth"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise UpgradeError(f"openssl could not make the emulator's certificate: "
                           f"{result.stderr.strip()}")
    key.chmod(0o600)
