"""``edgecls keygen``, ``edgecls sign`` and ``edgecls verify``: signed models (OpenSSF model-signing format)."""

from __future__ import annotations

from pathlib import Path

import click

from edgecls.commands.common import PASSPHRASE_HELP, load_classifier, passphrase_from_env
from edgecls.commands.text import echo, json_line


@click.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", default="edgecls", show_default=True, help="The keys' file names: NAME.pem, NAME.pub.pem.")
@click.option("--passphrase-env", metavar="VAR", help="Encrypt the private key with the passphrase in this "
                                                      "environment variable.")
def keygen(folder: Path, name: str, passphrase_env: str | None) -> None:
    """Make a P-256 key pair in FOLDER: NAME.pem (private, mode 0600) and NAME.pub.pem (for devices).

    \b
    Example:
      edgecls keygen keys/ && edgecls export model.h5 --sign keys/edgecls.pem
    """
    from edgecls.runtime.signatures import generate_key_pair, load_public_keys

    private, public = generate_key_pair(folder, name=name, passphrase=passphrase_from_env(passphrase_env))
    (key,) = load_public_keys([public])
    echo(f"private key {private} (keep it off the devices), public key {public}, fingerprint {key.fingerprint}")


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--key", "key", required=True, type=click.Path(dir_okay=False, exists=True), help="Private key (PEM).")
@click.option("--passphrase-env", metavar="VAR", help=PASSPHRASE_HELP)
def sign(files: tuple[Path, ...], key: str, passphrase_env: str | None) -> None:
    """Sign model files: FILE.sig beside each, verifiable by edgecls verify and model_signing verify key.

    \b
    Example:
      edgecls sign model_int8.tflite --key keys/edgecls.pem
    """
    from edgecls.runtime.signatures import sign_file

    passphrase = passphrase_from_env(passphrase_env)
    for path in files:
        echo(f"signed {path}: {sign_file(path, key, passphrase=passphrase)}")


@click.command()
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--key", "keys", multiple=True, type=click.Path(dir_okay=False, exists=True),
              help="A trusted public key (repeat for several). Default: EDGECLS_TRUSTED_KEYS.")
@click.option("--state", type=click.Path(file_okay=False),
              help="Also refuse a version older than one accepted before (and record this one).")
@click.option("--json", "as_json", is_flag=True, help="Print the answer as one JSON object.")
def verify(model: Path, keys: tuple[str, ...], state: str | None, as_json: bool) -> None:
    """Check that MODEL is signed by a trusted key (and, with --state, not older than before).

    Prints the signing key's fingerprint and the card's name and version; exit 1 with the reason when
    it is not signed, altered, truncated, renamed, another model's signature, or signed by another key.

    \b
    Example:
      edgecls verify model_int8.tflite --key edgecls.pub.pem --state /var/lib/edgecls
    """
    from edgecls.runtime.signatures import verify_file
    from edgecls.runtime.trust import Trust

    trust = Trust.of(list(keys) or None, state_dir=state)
    if trust is None:
        raise click.UsageError("give --key PUB.pem (or set EDGECLS_TRUSTED_KEYS)")
    verified = verify_file(model, trust.keys)
    with load_classifier(model, trusted_keys=trust) as clf:
        card = clf.card
    data = {"model": str(model), "signed_by": verified.key.fingerprint, "key": verified.key.path,
            "name": card.name, "version": card.version, "sha256": verified.sha256}
    if as_json:
        click.echo(json_line(data))
    else:
        echo(f"{model}: signed by {verified.key.fingerprint[:16]}… ({Path(verified.key.path).name}); "
             f"model {card.name!r} version {card.version}")
