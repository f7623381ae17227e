"""Render src/josef/protocol/_generated/registry_data.py: the API-key table."""

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
        '"""Every API key in the specifications: (name, module, request, response, listeners)."""',
        "",
        "from __future__ import annotations",
        "",
    ]
    imports = []
    rows = []
    for key in sorted(by_key):
        req, resp = by_key[key]["request"], by_key[key]["response"]
        mod = module_name(req)
        line = f"from josef.protocol._generated.{mod} import {req.name}, {resp.name}"
        if len(line) > 100:  # wrapped the way ruff's import sorter wants it
            line = (
                f"from josef.protocol._generated.{mod} import (\n"
                f"    {req.name},\n    {resp.name},\n)"
            )
        imports.append(line)
        name = req.name.removesuffix("Request")
        rows.append(
            f'    {key}: ("{name}", {req.name}, {resp.name}, {tuple(sorted(req.listeners))!r}),'
        )
    lines += sorted(imports)
    lines += [
        "",
        "API_TABLE: dict[int, tuple[str, type, type, tuple[str, ...]]] = {",
        *rows,
        "}",
    ]
    return "\n".join(lines) + "\n"
