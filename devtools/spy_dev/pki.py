"""Certificates, token files, kubeconfigs and the audit policy of the local control plane.

Called by spy_dev.devcluster.DevCluster.start() once per fresh cluster; `new_ca` and
`server_cert` also make the approval webhook's certificates (spy_dev.webhook). Files are
written under the cluster's state directory.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Issued:
    """A private key and its certificate (cryptography objects), PEM-encoded on demand."""

    key: Any
    cert: Any

    def cert_pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        data: bytes = self.cert.public_bytes(serialization.Encoding.PEM)
        return data

    def key_pem(self) -> bytes:
        return pem_key(self.key)


def pem_key(key: Any) -> bytes:
    """A private key as unencrypted PKCS#8 PEM."""
    from cryptography.hazmat.primitives import serialization

    data: bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return data


def new_ca(common_name: str, days: int) -> Issued:
    """A self-signed P-256 CA valid from 5 minutes ago for `days`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    usage = x509.KeyUsage(
        digital_signature=True,
        key_cert_sign=True,
        crl_sign=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        encipher_only=False,
        decipher_only=False,
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .sign(key, hashes.SHA256())
    )
    return Issued(key, cert)


def server_cert(ca: Issued, common_name: str, sans: list[str], days: int) -> Issued:
    """A P-256 TLS server certificate signed by `ca` for the names and IPs in `sans`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([_san(s) for s in sans]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return Issued(key, cert)


def _san(name: str) -> Any:
    from cryptography import x509

    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def write_pki(pki: Path) -> None:
    """The control plane's CA, kube-apiserver serving certificate and service-account key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pki.mkdir(parents=True, exist_ok=True)
    ca = new_ca("spyoptions-dev-ca", days=365)
    sans = ["localhost", "kubernetes", "kubernetes.default.svc", "127.0.0.1", "10.96.0.1"]
    srv = server_cert(ca, "kube-apiserver", sans, days=365)
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (pki / "ca.crt").write_bytes(ca.cert_pem())
    (pki / "ca.key").write_bytes(ca.key_pem())
    (pki / "apiserver.crt").write_bytes(srv.cert_pem())
    (pki / "apiserver.key").write_bytes(srv.key_pem())
    (pki / "sa.key").write_bytes(pem_key(sa_key))
    (pki / "sa.pub").write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    for key_file in ("ca.key", "apiserver.key", "sa.key"):
        (pki / key_file).chmod(0o600)


AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived", "ResponseStarted"],
    "rules": [
        # The control plane's own components write constantly; tests count the
        # operator's and users' writes only.
        {"level": "None", "users": ["components"]},
        {
            "level": "Metadata",
            "verbs": ["create", "update", "patch", "delete", "deletecollection"],
        },
        {"level": "None"},
    ],
}


def kubeconfig(server: str, ca_file: Path, users: dict[str, str], current: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "spyoptions-dev",
                "cluster": {"server": server, "certificate-authority": str(ca_file)},
            }
        ],
        "users": [{"name": name, "user": {"token": token}} for name, token in users.items()],
        "contexts": [
            {"name": name, "context": {"cluster": "spyoptions-dev", "user": name}} for name in users
        ],
        "current-context": current,
    }


def write_secret_file(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o600)
