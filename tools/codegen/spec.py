"""Parse Kafka's JSON message specifications into a small typed model.

The model is what both the code emitter and the round-trip property tests work from, so the
tests exercise exactly the field layout the generator saw. Facts encoded here (version range
syntax, default spellings, the `//` and `/* */` comments) come from the spec files themselves.
"""

from __future__ import annotations

import json
import keyword
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path

PRIMITIVES = frozenset(
    {
        "bool",
        "int8",
        "int16",
        "uint16",
        "int32",
        "uint32",
        "int64",
        "float64",
        "uuid",
        "string",
        "bytes",
        "records",
    }
)
FIXED_WIDTH = {
    "bool": 1,
    "int8": 1,
    "int16": 2,
    "uint16": 2,
    "int32": 4,
    "uint32": 4,
    "int64": 8,
    "float64": 8,
    "uuid": 16,
}
INT_RANGES = {
    "int8": (-(2**7), 2**7 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
}
# Names that would collide with the public methods of a generated top-level message.
RESERVED_ATTRIBUTES = frozenset({"decode", "read", "encode", "encode_chunks", "size"})


class SpecError(Exception):
    """A specification file the generator does not understand."""


@dataclass(frozen=True, slots=True)
class Versions:
    """An inclusive version range; `hi is None` means open-ended ("3+")."""

    lo: int
    hi: int | None

    @staticmethod
    def parse(text: str | None) -> Versions | None:
        """Parse "0+", "3-5", "7" or "none" (None)."""
        if text is None or text == "none":
            return None
        text = text.strip()
        if text.endswith("+"):
            return Versions(int(text[:-1]), None)
        if "-" in text:
            lo, hi = text.split("-")
            return Versions(int(lo), int(hi))
        return Versions(int(text), int(text))

    def contains(self, version: int) -> bool:
        return self.lo <= version and (self.hi is None or version <= self.hi)


def contains(versions: Versions | None, version: int) -> bool:
    return versions is not None and versions.contains(version)


@dataclass(slots=True)
class Field:
    name: str  # the spec's name, e.g. "ThrottleTimeMs"
    attr: str  # snake_case Python attribute, e.g. "throttle_time_ms"
    type: str  # primitive name, struct name, or "[]" + element type
    versions: Versions | None
    nullable: Versions | None
    tagged: Versions | None
    tag: int | None
    flexible_override: bool  # True when the field says "flexibleVersions": "none"
    ignorable: bool
    default: object  # a Python value; None for null; STRUCT_DEFAULT for a default instance
    struct: Struct | None = None  # for struct and []struct types

    @property
    def is_array(self) -> bool:
        return self.type.startswith("[]")

    @property
    def element_type(self) -> str:
        return self.type[2:] if self.is_array else self.type

    def present(self, version: int) -> bool:
        return contains(self.versions, version)

    def is_tagged(self, version: int) -> bool:
        return contains(self.tagged, version)

    def is_nullable(self, version: int) -> bool:
        return contains(self.nullable, version)


@dataclass(slots=True)
class Struct:
    name: str  # spec struct name, e.g. "TopicProduceData"
    fields: list[Field]
    common: bool = False  # a commonStructs entry (module-level class)


@dataclass(slots=True)
class Message:
    name: str  # e.g. "ProduceRequest"
    kind: str  # request, response, header, data, metadata
    api_key: int | None
    valid: Versions
    flexible: Versions | None
    listeners: tuple[str, ...]
    root: Struct
    structs: list[Struct] = field(default_factory=list)  # nested, in definition order
    common: list[Struct] = field(default_factory=list)
    source: str = ""  # file name the message came from

    @property
    def min_version(self) -> int:
        return self.valid.lo

    @property
    def max_version(self) -> int:
        assert self.valid.hi is not None
        return self.valid.hi

    def is_flexible(self, version: int) -> bool:
        return contains(self.flexible, version)


def strip_comments(text: str) -> str:
    """Remove `//` line comments and `/* */` block comments that are outside JSON strings."""
    out: list[str] = []
    i = 0
    n = len(text)
    start = 0
    in_string = False
    while i < n:
        c = text[i]
        if in_string:
            if c == "\\":
                i += 2
                continue
            if c == '"':
                in_string = False
            i += 1
            continue
        if c == '"':
            in_string = True
            i += 1
            continue
        if c == "/" and i + 1 < n and text[i + 1] in "/*":
            out.append(text[start:i])
            if text[i + 1] == "/":
                j = text.find("\n", i)
                i = n if j < 0 else j
            else:
                j = text.find("*/", i + 2)
                if j < 0:
                    raise SpecError("unterminated /* comment")
                i = j + 2
            start = i
            continue
        i += 1
    out.append(text[start:])
    return "".join(out)


def snake_case(name: str) -> str:
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    return s.lower()


def module_name(message: Message) -> str:
    base = message.name.replace("KRaft", "Kraft")
    if message.kind in ("request", "response"):
        base = re.sub(r"(Request|Response)$", "", base)
    return snake_case(base)


_ABSENT = object()  # a field without a "default" key


def _parse_default(raw: object, type_: str, nullable: Versions | None) -> object:
    """The Python default of a field. Spec defaults are strings, numbers, booleans or null."""
    if raw is _ABSENT:
        text: str | None = None
    elif raw is None:
        text = "null"
    elif isinstance(raw, bool):
        text = "true" if raw else "false"
    else:
        text = str(raw).strip()
    if type_.startswith("[]"):
        if text == "null":
            return None
        if text not in (None, "", "[]"):
            raise SpecError(f"unsupported array default {raw!r}")
        return []
    if type_ in INT_RANGES:
        if text in (None, ""):
            return 0
        value = int(text, 0)
        lo, hi = INT_RANGES[type_]
        if not lo <= value <= hi:
            raise SpecError(f"default {raw!r} out of range for {type_}")
        return value
    if type_ == "bool":
        if text in (None, ""):
            return False
        if text.lower() not in ("true", "false"):
            raise SpecError(f"bad bool default {raw!r}")
        return text.lower() == "true"
    if type_ == "float64":
        return 0.0 if text in (None, "") else float(text)
    if type_ == "uuid":
        return uuid.UUID(int=0) if text in (None, "") else uuid.UUID(text)
    if type_ == "string":
        if text == "null":
            return None
        return "" if text is None else text
    if type_ in ("bytes", "records"):
        if text == "null":
            return None
        if text not in (None, ""):
            raise SpecError(f"unsupported bytes default {raw!r}")
        # Kafka's records fields default to null; they are nullable wherever they appear.
        return None if type_ == "records" and nullable is not None else b""
    # A struct: null for a nullable struct whose default says so, else a default instance.
    if text in ("null", "None"):
        return None
    return STRUCT_DEFAULT


STRUCT_DEFAULT = "<default instance>"


class _Parser:
    def __init__(self, data: dict, source: str) -> None:
        self.data = data
        self.source = source
        self.structs: list[Struct] = []
        self.common: dict[str, Struct] = {}
        self.struct_names: set[str] = set()

    def parse(self) -> Message:
        d = self.data
        valid = Versions.parse(d["validVersions"])
        if valid is None:
            raise SpecError(f"{self.source}: no valid versions")
        if valid.hi is None:
            raise SpecError(f"{self.source}: open-ended validVersions")
        for cs in d.get("commonStructs", []):
            self.common[cs["name"]] = Struct(cs["name"], [], common=True)
        for cs in d.get("commonStructs", []):
            self.common[cs["name"]].fields = self.fields(cs["fields"])
        root = Struct(d["name"], self.fields(d["fields"]))
        return Message(
            name=d["name"],
            kind=d["type"],
            api_key=d.get("apiKey"),
            valid=valid,
            flexible=Versions.parse(d["flexibleVersions"]),
            listeners=tuple(d.get("listeners", ())),
            root=root,
            structs=self.structs,
            common=list(self.common.values()),
            source=self.source,
        )

    def fields(self, specs: list[dict]) -> list[Field]:
        out: list[Field] = []
        seen: set[str] = set()
        for spec in specs:
            f = self.field(spec)
            if f.attr in seen:
                raise SpecError(f"{self.source}: duplicate field {f.attr}")
            seen.add(f.attr)
            out.append(f)
        return out

    def field(self, spec: dict) -> Field:
        name = spec["name"]
        type_ = spec["type"]
        tagged = Versions.parse(spec.get("taggedVersions"))
        versions = Versions.parse(spec.get("versions", spec.get("taggedVersions")))
        nullable = Versions.parse(spec.get("nullableVersions"))
        tag = spec.get("tag")
        if tag is not None:
            tag = int(tag)
        if (tag is None) != (tagged is None):
            raise SpecError(f"{self.source}: {name} needs both tag and taggedVersions")
        if tagged is not None and versions != tagged:
            raise SpecError(f"{self.source}: {name}: versions differ from taggedVersions")
        flex = spec.get("flexibleVersions")
        if flex not in (None, "none"):
            raise SpecError(f"{self.source}: {name}: unsupported field flexibleVersions {flex}")
        attr = snake_case(name)
        if keyword.iskeyword(attr) or attr in RESERVED_ATTRIBUTES:
            attr += "_"
        f = Field(
            name=name,
            attr=attr,
            type=type_,
            versions=versions,
            nullable=nullable,
            tagged=tagged,
            tag=tag,
            flexible_override=flex == "none",
            ignorable=bool(spec.get("ignorable", False)),
            default=_parse_default(spec.get("default", _ABSENT), type_, nullable),
        )
        element = f.element_type
        if element not in PRIMITIVES:
            if "fields" in spec:
                if element in self.struct_names or element in self.common:
                    raise SpecError(f"{self.source}: struct {element} defined twice")
                self.struct_names.add(element)
                struct = Struct(element, [])
                self.structs.append(struct)
                struct.fields = self.fields(spec["fields"])
                f.struct = struct
            elif element in self.common:
                f.struct = self.common[element]
            else:
                raise SpecError(f"{self.source}: unknown type {type_}")
        elif "fields" in spec:
            raise SpecError(f"{self.source}: primitive {name} with fields")
        if type_ == "records" and f.is_array:
            raise SpecError(f"{self.source}: array of records")
        return f


def load_message(path: Path) -> Message:
    try:
        data = json.loads(strip_comments(path.read_text(encoding="utf-8")))
    except json.JSONDecodeError as e:
        raise SpecError(f"{path.name}: {e}") from e
    return _Parser(data, path.name).parse()


def load_all(spec_dir: Path) -> tuple[list[Message], list[Message]]:
    """Return (messages from message/, internal formats from internal/), sorted by name."""
    messages = [load_message(p) for p in sorted((spec_dir / "message").glob("*.json"))]
    internal = [load_message(p) for p in sorted((spec_dir / "internal").glob("*.json"))]
    return messages, internal
