"""Render src/josef/protocol/_generated/api_table.py: the API-key table, as plain data."""

from __future__ import annotations

from tools.codegen.emit import HEADER
from tools.codegen.spec import Message, module_name


def render_registry(messages: list[Message]) -> str:
    by_key: dict[int, dict[str, Message]] = {}
    for m in messages:
        if m.api_key is not None and m.kind in ("request", "response"):
            by_key.setdefault(m.api_key, {})[m.kind] = m
    lines = [
        HEADER.rstrip("\n"),
        '"""Every API key in the specifications, as plain data so that importing it is cheap.',
        "",
        "key: (name, module, request class, response class, min version, max version,",
        "first flexible version or None, listeners). `josef.protocol.messages` imports a",
        'module only when its classes are first used."""',
        "",
        "from __future__ import annotations",
        "",
        "API_TABLE: dict[",
        "    int, tuple[str, str, str, str, int, int, int | None, tuple[str, ...]]",
        "] = {",
    ]
    for key in sorted(by_key):
        req, resp = by_key[key]["request"], by_key[key]["response"]
        name = req.name.removesuffix("Request")
        row = (
            name, module_name(req), req.name, resp.name, req.min_version, req.max_version,
            None if req.flexible is None else req.flexible.lo, tuple(sorted(req.listeners)),
        )
        lines.append(f"    {key}: {row!r},")
    lines.append("}")
    return "\n".join(lines) + "\n"
