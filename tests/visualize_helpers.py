"""Shared helpers for the visualize tests: run the CLI in-process, read SVG and PNG."""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET
import zlib

SVG = "{http://www.w3.org/2000/svg}"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_cli(argv, capsys):
    """Run `coltiva ARGV` in this process: (exit code, stdout, stderr)."""
    from coltiva.cli import main

    try:
        main(list(argv))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out, err = capsys.readouterr()
    return code, out, err


def svg_root(data: bytes | str):
    return ET.fromstring(data if isinstance(data, bytes) else data.encode("utf-8"))


def svg_texts(root) -> str:
    """Every <text> of the SVG, one per line, as a reader sees it."""
    return "\n".join("".join(el.itertext()) for el in root.iter(f"{SVG}text"))


def groups_with_class(root, cls: str):
    return [g for g in root.iter(f"{SVG}g") if cls in (g.get("class") or "").split()]


def png_is_not_blank(data: bytes) -> bool:
    """True when the image has real content: many distinct bytes once inflated."""
    assert data.startswith(PNG_SIGNATURE)
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    raw = zlib.decompress(idat)
    return len(set(raw)) > 16
