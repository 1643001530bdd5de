"""A throwaway certificate so ``https://{domainName}/{stage}`` reaches the local gateway.

On AWS a Lambda often builds its ``@connections`` endpoint from the event:
``https://{requestContext.domainName}/{requestContext.stage}``. Locally that URL only works
if the gateway answers TLS on the port named in ``domainName`` and the Lambda trusts the
certificate. The stack makes one self-signed certificate per run, serves it on each stage's
TLS port, and hands its path to every worker as ``AWS_CA_BUNDLE``, which boto3 reads; the
Lambda's code stays as it is on AWS.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["LocalCertificate"]

#: Long enough for any local session; short enough that a leaked file is soon worthless.
_VALIDITY = datetime.timedelta(days=7)


@dataclass(frozen=True)
class LocalCertificate:
    """A self-signed certificate and its key, written as PEM files in one directory.

    Attributes:
        cert_path: The certificate; also the CA bundle clients trust.
        key_path: Its private key (readable by the owner only).
    """

    cert_path: Path
    key_path: Path

    @classmethod
    def create(cls, directory: Path, hosts: Sequence[str]) -> LocalCertificate:
        """Make a certificate valid for ``hosts`` (IP addresses or names) and write it.

        An EC key: generating one takes about a millisecond, an RSA key tens of them.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wsstack local gateway")])
        now = datetime.datetime.now(datetime.UTC)
        public = key.public_key()
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.SubjectAlternativeName([_general_name(h) for h in dict.fromkeys(hosts)]), False)
            # Its own trust anchor: a CA that may sign only itself, as strict verifiers
            # (Python 3.13's default context) require of a certificate in a CA bundle.
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, key_cert_sign=True, content_commitment=False,
                    key_encipherment=False, data_encipherment=False, key_agreement=False,
                    crl_sign=False, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
            .sign(key, hashes.SHA256())
        )
        directory.mkdir(parents=True, exist_ok=True)
        cert_path = directory / "gateway-cert.pem"
        key_path = directory / "gateway-key.pem"
        cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_path.touch(mode=0o600)
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return cls(cert_path, key_path)

    def server_context(self) -> ssl.SSLContext:
        """A server-side context serving this certificate."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_path, self.key_path)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client-side context that trusts this certificate (for tests and tools)."""
        return ssl.create_default_context(cafile=str(self.cert_path))


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)
