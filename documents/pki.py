"""Signing keys: a configured platform certificate, or a local certificate authority.

Without a configured certificate the service makes its own authority in the data folder on
first use, named plainly as not a qualified trust service, and issues each signatory a
one-time certificate in their name for each signature.

Keys are RSA: pyHanko marks a file signed with ECDSA P-256 as PDF 2.0 (ISO/TS 32002), which a
PDF/A-3 file (PDF 1.7) must not be. Making an RSA key costs 0.1-0.5 s, too slow for one per
signature, so each running process makes one signing key, held in memory only (never written
anywhere), and every one-time certificate certifies that key. The authority's key is what
vouches for the names either way, and it is kept on disk, encrypted, as before.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass, field
from pathlib import Path

from asn1crypto import crl as asn1_crl
from asn1crypto import keys as asn1_keys
from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.x509.oid import NameOID
from pyhanko.sign import signers
from pyhanko_certvalidator.registry import CertificateStore, SimpleCertificateStore
from pyhanko_certvalidator.util import get_pyca_cryptography_hash

log = logging.getLogger(__name__)

AUTHORITY_ORG = "ODR local signing authority (not a qualified trust service)"
# The authority's key lives for years: 3072 bits. The signing key lives as long as the process
# and signs twice per signature (pyHanko sizes the signature with a trial one): 2048 bits, a
# third of the time, acceptable for RSA signatures until 2030 (NIST SP 800-57).
AUTHORITY_KEY_BITS = 3072
SIGNING_KEY_BITS = 2048
# How long an authority's revocation list (embedded in the sealed file) says it is current.
CRL_DAYS = 7


@dataclass(frozen=True)
class TrustRoots:
    """What verification trusts: roots for signers, and roots for timestamp authorities.

    Kept apart so that a public timestamp authority's root never vouches for a signer.
    """

    signers: list[asn1_x509.Certificate]
    timestamps: list[asn1_x509.Certificate] = field(default_factory=list)


def _asn1_cert(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _asn1_key(key: rsa.RSAPrivateKey) -> asn1_keys.PrivateKeyInfo:
    return asn1_keys.PrivateKeyInfo.load(key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))


def load_certificates(path: Path) -> list[asn1_x509.Certificate]:
    """Every certificate in a PEM (or single DER) file."""
    data = path.read_bytes()
    if not pem.detect(data):
        return [asn1_x509.Certificate.load(data)]
    return [asn1_x509.Certificate.load(der) for _type, _headers, der in pem.unarmor(
        data, multiple=True)]


def is_self_signed(cert: asn1_x509.Certificate) -> bool:
    return bool(cert.self_signed in ("yes", "maybe"))


class KeptKeySigner(signers.SimpleSigner):
    """pyHanko's signer with its RSA key kept loaded.

    ``SimpleSigner`` loads its key from DER for every signature it makes, twice per PDF
    signature (a size estimate, then the signature), and loading an RSA key checks its
    primes: 0.1-0.3 s each time, against a few milliseconds for the signature itself.
    """

    def __init__(self, key: rsa.RSAPrivateKey, signing_cert: asn1_x509.Certificate,
                 cert_registry: CertificateStore) -> None:
        super().__init__(signing_cert=signing_cert, signing_key=_asn1_key(key),
                         cert_registry=cert_registry)
        self.key = key

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        try:
            algorithm = self.get_signature_mechanism_for_digest(digest_algorithm).signature_algo
        except ValueError:
            algorithm = ""
        if algorithm != "rsassa_pkcs1v15":  # PSS and the rest: pyHanko's own way
            return super().sign_raw(data, digest_algorithm)
        return self.key.sign(data, PKCS1v15(), get_pyca_cryptography_hash(digest_algorithm))


def kept_key_signer(loaded: signers.SimpleSigner) -> signers.SimpleSigner:
    """The same signer with its key kept loaded, when that key is RSA."""
    key = serialization.load_der_private_key(loaded.signing_key.dump(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey) or loaded.signing_cert is None:
        return loaded
    return KeptKeySigner(key, loaded.signing_cert, loaded.cert_registry)


def _name(common_name: str, email: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]),
                  x509.NameAttribute(NameOID.ORGANIZATION_NAME, AUTHORITY_ORG)]
    if email:
        attributes.append(x509.NameAttribute(NameOID.EMAIL_ADDRESS, email))
    return x509.Name(attributes)


def _new_key(bits: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@dataclass
class LocalAuthority:
    key: rsa.RSAPrivateKey
    cert: x509.Certificate
    # Earlier authorities of this data folder (before the move to RSA): no longer used to
    # sign, still trusted so that agreements they signed keep verifying.
    retired: list[x509.Certificate] = field(default_factory=list)
    _signing_key: rsa.RSAPrivateKey | None = field(default=None, init=False, repr=False)

    @classmethod
    def open(cls, folder: Path, passphrase: bytes) -> LocalAuthority:
        """Load the authority from ``folder``, making it on first use (key encrypted at rest).

        An authority with an elliptic-curve key (made by earlier versions) is retired, not
        deleted: its files move to ``retired/`` and a new RSA authority takes its place.
        """
        key_path, cert_path = folder / "ca.key", folder / "ca.pem"
        if key_path.exists() and cert_path.exists():
            key = serialization.load_pem_private_key(key_path.read_bytes(), passphrase)
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            if isinstance(key, rsa.RSAPrivateKey):
                return cls(key, cert, cls._retired(folder))
            cls._retire(folder, cert)
        folder.mkdir(parents=True, exist_ok=True)
        key = _new_key(AUTHORITY_KEY_BITS)
        now = datetime.datetime.now(datetime.UTC)
        subject = _name("ODR Local Signing Authority")
        cert = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256())
        )
        key_path.write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase)))
        key_path.chmod(0o600)
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cls(key, cert, cls._retired(folder))

    @staticmethod
    def _retire(folder: Path, cert: x509.Certificate) -> None:
        retired = folder / "retired"
        retired.mkdir(exist_ok=True)
        stem = f"ca-{cert.serial_number:x}"
        (folder / "ca.key").replace(retired / f"{stem}.key")
        (folder / "ca.pem").replace(retired / f"{stem}.pem")
        log.warning("Retired the elliptic-curve signing authority to %s; made an RSA one.",
                    retired)

    @staticmethod
    def _retired(folder: Path) -> list[x509.Certificate]:
        return [x509.load_pem_x509_certificate(p.read_bytes())
                for p in sorted((folder / "retired").glob("ca-*.pem"))]

    @staticmethod
    def existing_roots(folder: Path) -> list[asn1_x509.Certificate]:
        """The certificates of this folder's authorities, current and retired, without making
        one: what stays trusted after a platform certificate has been configured."""
        paths = [folder / "ca.pem", *sorted((folder / "retired").glob("ca-*.pem"))]
        return [_asn1_cert(x509.load_pem_x509_certificate(p.read_bytes()))
                for p in paths if p.exists()]

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def trust_root(self) -> asn1_x509.Certificate:
        return _asn1_cert(self.cert)

    @property
    def trust_roots(self) -> list[asn1_x509.Certificate]:
        return [self.trust_root, *(_asn1_cert(c) for c in self.retired)]

    def crl(self) -> asn1_crl.CertificateList:
        """A current, empty revocation list: one-time certificates are never revoked (their
        key is never handed out). Embedded in the sealed file so that long-term validation
        finds revocation data for this authority, which has no URL to fetch it from."""
        now = datetime.datetime.now(datetime.UTC)
        crl = (
            x509.CertificateRevocationListBuilder().issuer_name(self.cert.subject)
            .last_update(now - datetime.timedelta(minutes=5))
            .next_update(now + datetime.timedelta(days=CRL_DAYS))
            .add_extension(x509.CRLNumber(int(now.timestamp())), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return asn1_crl.CertificateList.load(crl.public_bytes(serialization.Encoding.DER))

    def signer_for(self, common_name: str, email: str | None = None) -> signers.SimpleSigner:
        """A one-time certificate in the signatory's name, issued now, with its signer."""
        if self._signing_key is None:
            self._signing_key = _new_key(SIGNING_KEY_BITS)
        key = self._signing_key
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder().subject_name(_name(common_name, email))
            .issuer_name(self.cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=True, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return KeptKeySigner(
            key, _asn1_cert(cert), SimpleCertificateStore.from_certs(  # type: ignore[no-untyped-call]
                [self.trust_root]))
