"""Group the parsed messages into modules and write them, deterministically."""

from __future__ import annotations

from pathlib import Path

from tools.codegen.emit import HEADER, ModuleEmitter
from tools.codegen.registry import render_registry
from tools.codegen.spec import Message, SpecError, load_all, module_name


def plan_modules(messages: list[Message], internal: list[Message]) -> dict[str, list[Message]]:
    """Map relative module path (e.g. "produce.py", "internal/offset_commit_key.py") to
    the messages it holds, in a stable order (request before response)."""
    modules: dict[str, list[Message]] = {}
    for m in messages:
        path = "headers.py" if m.kind == "header" else f"{module_name(m)}.py"
        modules.setdefault(path, []).append(m)
    for m in internal:
        modules.setdefault(f"internal/{module_name(m)}.py", []).append(m)
    order = {"header": 0, "request": 0, "response": 1}
    for path, ms in modules.items():
        ms.sort(key=lambda m: (order.get(m.kind, 0), m.name))
        keys = {m.api_key for m in ms}
        if len(keys) != 1:
            raise SpecError(f"{path}: messages with different API keys {keys}")
    return dict(sorted(modules.items()))


def _doc(ms: list[Message]) -> str:
    names = " and ".join(m.name for m in ms)
    sources = ", ".join(m.source for m in ms)
    key = ms[0].api_key
    what = f" (API key {key})" if key is not None else ""
    return f"{names}{what}, from {sources}."


def render_all(spec_dir: Path) -> dict[str, str]:
    """Relative path -> file text for the whole generated package."""
    messages, internal = load_all(spec_dir)
    files: dict[str, str] = {}
    for path, ms in plan_modules(messages, internal).items():
        files[path] = ModuleEmitter(ms, _doc(ms)).render()
    files["api_table.py"] = render_registry(messages)
    files["__init__.py"] = (
        HEADER + '"""Codec classes generated from the Kafka message specifications.\n\n'
        "Import from the submodules (e.g. `from josef.protocol._generated.produce import\n"
        "ProduceRequest`) or look messages up by API key in `josef.protocol.messages`.\n"
        '"""\n'
    )
    files["internal/__init__.py"] = (
        HEADER + '"""Formats of the records Kafka writes to its internal topics."""\n'
    )
    return files


def generate(spec_dir: Path, out_dir: Path) -> list[Path]:
    """Write every generated file under out_dir and delete stale generated modules."""
    files = render_all(spec_dir)
    written: list[Path] = []
    for rel, text in files.items():
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        written.append(path)
    keep = set(written)
    for old in out_dir.rglob("*.py"):
        if old not in keep and old.read_text(encoding="utf-8").startswith(HEADER):
            old.unlink()
    return written
