"""`coltiva keys create|list|revoke`: API keys for `coltiva serve`, stored hashed in a keys file."""

from __future__ import annotations

import click
from rich.table import Table

from service.keys import DEFAULT_KEYS

from ..output import console

__all__ = ["command", "keys_option"]

keys_option = click.option("--keys", "path", default=DEFAULT_KEYS, show_default=True,
                           type=click.Path(dir_okay=False), help="The keys file (give the same to `coltiva serve`).")


@click.group("keys")
def command():
    """API keys with scopes (events:write, actions:read, admin) for the service."""


@command.command("create")
@click.argument("name")
@click.option("--scope", "scopes", multiple=True, required=True,
              type=click.Choice(["events:write", "actions:read", "admin"]), help="Repeat for several scopes.")
@keys_option
def create(name, scopes, path):
    """Create a key; its token is printed once (only its hash is kept)."""
    from service.keys import KeyFile

    key, token = KeyFile(path).create(name, tuple(scopes))
    click.echo(token)
    click.echo(f"key {key.name!r} ({key.id}) with {', '.join(key.scopes)} written to {path}; "
               "keep the token: it is not stored", err=True)


@command.command("list")
@keys_option
def list_keys(path):
    """Every key: id, name, scopes, created, revoked (never the token)."""
    from service.keys import KeyFile

    table = Table(title=str(path))
    for col in ("id", "name", "scopes", "created", "revoked"):
        table.add_column(col)
    for k in KeyFile(path).load():
        table.add_row(k.id, k.name, ", ".join(k.scopes), k.created, k.revoked or "")
    console().print(table)


@command.command("revoke")
@click.argument("name_or_id")
@keys_option
def revoke(name_or_id, path):
    """Revoke a key by name or id; a running service stops accepting it at once."""
    from service.keys import KeyFile

    key = KeyFile(path).revoke(name_or_id)
    click.echo(f"revoked {key.name!r} ({key.id})")
