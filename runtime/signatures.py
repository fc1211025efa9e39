"""Signed models: an OpenSSF model-signing signature beside each file, written and checked with
``cryptography`` alone.

The format is model-signing 1.x's, for one file signed with an elliptic-curve key: ``MODEL.sig`` is a
Sigstore bundle (JSON) whose DSSE envelope holds an in-toto statement. The statement's one resource is
the file (``"."``) with its SHA-256; its subject is the file's name with the SHA-256 of that digest; the
envelope's signature is ECDSA (P-256 with SHA-256, P-384 with SHA-384, P-521 with SHA-512) over the
DSSE pre-authentication encoding; the bundle names the key by the SHA-256 of its PEM public key (its
fingerprint here). ``model_signing verify key MODEL --signature MODEL.sig --public_key PUB.pem`` accepts
what :func:`sign_file` writes; :func:`verify_file` accepts what ``model_signing sign key`` writes. The
statement's subject also carries the signed size (an in-toto annotation the tool ignores), so that a
truncated file is told apart from an altered one.

Reading this format needs ``cryptography`` (extra ``sign``), not ``model-signing``: its import takes
0.6 s and brings sigstore and ~39 packages, for checks that are twenty lines here.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecls.runtime.errors import BackendUnavailableError, SignatureError
from edgecls.runtime.files import file_identity, write_whole

__all__ = ["PublicKey", "Verified", "load_public_keys", "sign_file", "verify_file", "signature_path",
           "generate_key_pair", "SIGNATURE_SUFFIX"]

SIGNATURE_SUFFIX = ".sig"
BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
_IGNORED = [".git", ".github", ".gitattributes", ".gitignore"]
MAX_SIGNATURE_BYTES = 1 << 20
_CURVES = {"secp256r1": "SHA256", "secp384r1": "SHA384", "secp521r1": "SHA512"}


def _crypto() -> Any:
    """``cryptography``'s primitives. Raises BackendUnavailableError (extra ``sign``) when missing."""
    try:
        from cryptography import exceptions
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
    except ImportError:
        raise BackendUnavailableError("signed models need cryptography, which is not installed: "
                                      "pip install 'edgecls[sign]'", extra="sign") from None
    return exceptions, hashes, serialization, ec


def signature_path(model: str | os.PathLike) -> Path:
    """Where the signature of ``model`` lies: ``MODEL.sig`` beside it."""
    model = Path(model)
    return model.with_name(model.name + SIGNATURE_SUFFIX)


@dataclass(frozen=True)
class PublicKey:
    """A trusted public key: its file, its fingerprint (the SHA-256 of its PEM form, as model-signing names a
    key in a signature) and that PEM form (what travels to worker processes; the key object is made from it)."""

    path: str
    fingerprint: str
    pem: bytes = field(repr=False)

    @functools.cached_property
    def key(self) -> Any:
        """The key object (``cryptography``'s)."""
        _, _, serialization, _ = _crypto()
        return serialization.load_pem_public_key(self.pem)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "key"}  # the PEM travels, not the object


def _algorithm(key: Any, where: str) -> Any:
    _, hashes, _, ec = _crypto()
    if not isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey) or key.curve.name not in _CURVES:
        raise SignatureError(f"{where}: not an elliptic-curve key on P-256, P-384 or P-521 (what model-signing "
                             "signs with)")
    return ec.ECDSA(getattr(hashes, _CURVES[key.curve.name])())


def _fingerprint(public_key: Any) -> str:
    _, _, serialization, _ = _crypto()
    pem = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(pem).hexdigest()


def load_public_keys(paths: Iterable[str | os.PathLike]) -> tuple[PublicKey, ...]:
    """The public keys in ``paths`` (PEM files).

    Raises:
        SignatureError: a file that cannot be read, is not a PEM public key, or not on P-256/384/521.
        BackendUnavailableError: cryptography is not installed (extra ``sign``).
    """
    _, _, serialization, _ = _crypto()
    keys = []
    for path in paths:
        try:
            key = serialization.load_pem_public_key(Path(path).read_bytes())
        except OSError as exc:
            raise SignatureError(f"{path}: cannot read the trusted key ({exc.strerror or exc})") from None
        except ValueError:
            raise SignatureError(f"{path}: not a PEM public key (give the .pub.pem of edgecls keygen)") from None
        _algorithm(key, str(path))
        pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        keys.append(PublicKey(str(path), hashlib.sha256(pem).hexdigest(), pem))
    return tuple(keys)


def generate_key_pair(folder: str | os.PathLike, *, name: str = "edgecls", passphrase: bytes | None = None
                      ) -> tuple[Path, Path]:
    """A new P-256 key pair in ``folder``: ``NAME.pem`` (the private key, mode 0600, encrypted with
    ``passphrase`` when given) and ``NAME.pub.pem``. Refuses to overwrite either.

    Raises:
        SignatureError: a key of that name exists in ``folder``.
        OSError: the folder cannot be created or written.
    """
    _, _, serialization, ec = _crypto()
    folder = Path(folder)
    private, public = folder / f"{name}.pem", folder / f"{name}.pub.pem"
    for path in (private, public):
        if path.exists():
            raise SignatureError(f"{path}: exists; a key is never overwritten (choose another folder or name)")
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    crypt = (serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption())
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, crypt)
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable by others, not even briefly
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def _pae(payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding of an in-toto payload: what the signature covers."""
    return b" ".join([f"DSSEv1 {len(PAYLOAD_TYPE)} {PAYLOAD_TYPE} {len(payload)}".encode(), payload])


def _statement(name: str, digest: str, size: int) -> bytes:
    root = hashlib.sha256(bytes.fromhex(digest)).hexdigest()  # model-signing: SHA-256 over the resources' digests
    return json.dumps({
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": root}, "annotations": {"size": size}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "serialization": {"allow_symlinks": False, "hash_type": "sha256", "method": "files",
                              "ignore_paths": _IGNORED},
            "resources": [{"algorithm": "sha256", "digest": digest, "name": "."}],
        },
    }, indent=2).encode()


def sign_file(model: str | os.PathLike, private_key: str | os.PathLike, *, passphrase: bytes | None = None) -> Path:
    """Sign ``model`` with the key in ``private_key`` (PEM); write ``MODEL.sig`` whole; return its path.

    Raises:
        SignatureError: the key cannot be read or decrypted, or is not on P-256/384/521.
        OSError: the model cannot be read or the signature written.
    """
    _, _, serialization, _ = _crypto()
    model = Path(model)
    try:
        key = serialization.load_pem_private_key(Path(private_key).read_bytes(), passphrase)
    except OSError as exc:
        raise SignatureError(f"{private_key}: cannot read the private key ({exc.strerror or exc})") from None
    except (ValueError, TypeError) as exc:
        raise SignatureError(f"{private_key}: not a PEM private key, or the wrong passphrase ({exc})") from None
    algorithm = _algorithm(key, str(private_key))
    data = model.read_bytes()
    payload = _statement(model.name, hashlib.sha256(data).hexdigest(), len(data))
    bundle = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": _fingerprint(key.public_key())}, "tlogEntries": []},
        "dsseEnvelope": {"payload": base64.b64encode(payload).decode(), "payloadType": PAYLOAD_TYPE,
                         "signatures": [{"sig": base64.b64encode(key.sign(_pae(payload), algorithm)).decode(),
                                         "keyid": ""}]},
    }
    target = signature_path(model)
    write_whole(target, json.dumps(bundle, indent=1).encode())
    return target


@dataclass(frozen=True)
class Verified:
    """A file whose signature verified: the key that signed it, and the SHA-256 of the bytes checked."""

    path: Path
    key: PublicKey
    sha256: str
    identity: tuple[int, ...] = ()
    """The file's (device, inode, size, modification time) when its bytes were read: a loader compares it
    after loading, so that a file replaced meanwhile is not the one that runs."""


def _envelope(model: Path, sig: Path) -> tuple[str, bytes, bytes]:
    """(key hint, payload, signature) of the bundle ``sig``. Raises SignatureError: missing or malformed."""
    try:
        with open(sig, "rb") as handle:
            raw = handle.read(MAX_SIGNATURE_BYTES + 1)
    except FileNotFoundError:
        raise SignatureError(f"{model}: not signed ({sig.name} is missing beside it): sign it with "
                             "edgecls sign or export --sign") from None
    except OSError as exc:
        raise SignatureError(f"{model}: cannot read its signature {sig.name} ({exc.strerror or exc})") from None
    try:
        if len(raw) > MAX_SIGNATURE_BYTES:
            raise ValueError(f"over {MAX_SIGNATURE_BYTES >> 20} MiB")
        bundle = json.loads(raw)
        envelope = bundle["dsseEnvelope"]
        if envelope["payloadType"] != PAYLOAD_TYPE:
            raise ValueError(f"payload type {envelope['payloadType']!r}")
        hint = str((bundle.get("verificationMaterial") or {}).get("publicKey", {}).get("hint") or "")
        return (hint, base64.b64decode(envelope["payload"], validate=True),
                base64.b64decode(envelope["signatures"][0]["sig"], validate=True))
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError) as exc:
        raise SignatureError(f"{model}: {sig.name} is not a model-signing signature ({exc})") from None


def _signed(model: Path, payload: bytes) -> tuple[str, str, int | None]:
    """(signed name, signed SHA-256 of the file, signed size or None) from a verified statement."""
    try:
        statement = json.loads(payload)
        (subject,) = statement["subject"]
        resources = statement["predicate"]["resources"]
        root = hashlib.sha256(b"".join(bytes.fromhex(r["digest"]) for r in resources)).hexdigest()
        if statement.get("predicateType") != PREDICATE_TYPE or subject["digest"]["sha256"] != root:
            raise ValueError("its subject does not match its resources")
        if len(resources) != 1 or resources[0]["name"] != "." or resources[0].get("algorithm") != "sha256":
            raise ValueError("it signs a folder of files, not one file")
        size = (subject.get("annotations") or {}).get("size")
        return str(subject["name"]), resources[0]["digest"], size if isinstance(size, int) else None
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise SignatureError(f"{model}: its signature holds no one-file model statement ({exc})") from None


def verify_file(model: str | os.PathLike, keys: tuple[PublicKey, ...], *, data: bytes | None = None) -> Verified:
    """Check that ``MODEL.sig`` is a signature of ``model`` (its bytes, or ``data`` when the caller has
    read them) by one of ``keys``.

    Raises:
        SignatureError: each cause with its own message: not signed, a signature that is not one, signed by
            a key not among ``keys``, a signature that does not verify (forged or edited), another model's
            signature, a renamed file, a truncated file, an altered file.
        OSError: the model cannot be read.
    """
    exceptions, _, _, _ = _crypto()
    model = Path(model)
    sig = signature_path(model)
    hint, payload, signature = _envelope(model, sig)
    candidates = [k for k in keys if k.fingerprint == hint] if hint else list(keys)
    if not candidates:
        raise SignatureError(f"{model}: signed by a key that is not trusted (fingerprint {hint[:16]}…; trusted: "
                             + ", ".join(f"{k.fingerprint[:16]}… ({Path(k.path).name})" for k in keys) + ")")
    key = next((k for k in candidates if _valid(k, signature, payload, exceptions)), None)
    if key is None:
        raise SignatureError(f"{model}: the signature in {sig.name} does not verify with the trusted key "
                             f"{candidates[0].fingerprint[:16]}…: the signature file was forged or edited")
    name, digest, size = _signed(model, payload)
    if data is None:
        actual, length, identity = _hash_file(model)
    else:
        actual, length, identity = hashlib.sha256(data).hexdigest(), len(data), ()
    if name != model.name:
        if actual == digest:
            raise SignatureError(f"{model}: renamed: it was signed as {name!r} (a signature names its file)")
        raise SignatureError(f"{model}: {sig.name} is the signature of another model ({name!r})")
    if actual != digest:
        if size is not None and length < size:
            raise SignatureError(f"{model}: truncated: {length:,} bytes of the {size:,} signed")
        raise SignatureError(f"{model}: altered since it was signed (sha256 {actual[:16]}…, signed {digest[:16]}…)")
    return Verified(model, key, actual, identity)


def _hash_file(path: Path) -> tuple[str, int, tuple[int, ...]]:
    """(SHA-256, bytes, identity) of the file at ``path``, read in 1 MiB chunks hashed as they come (each
    still in the cache: 9 % faster than reading it whole first, measured on a 14 MB file)."""
    digest, chunk = hashlib.sha256(), bytearray(1 << 20)
    view, length = memoryview(chunk), 0
    with open(path, "rb", buffering=0) as handle:
        identity = file_identity(os.fstat(handle.fileno()))
        while n := handle.readinto(chunk):
            digest.update(view[:n])
            length += n
    return digest.hexdigest(), length, identity


def _valid(key: PublicKey, signature: bytes, payload: bytes, exceptions: Any) -> bool:
    try:
        key.key.verify(signature, _pae(payload), _algorithm(key.key, key.path))
    except exceptions.InvalidSignature:
        return False
    return True
