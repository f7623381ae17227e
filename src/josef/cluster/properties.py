"""Loading a broker's settings: Java properties file, JOSEF_* environment, --override flags.

Contract: `load_broker_config(config_file, overrides, environ)` returns a `BrokerConfig` built
from, in increasing precedence, Josef's defaults < the properties file (`--config FILE`) <
`JOSEF_*` environment variables < `--override key=value` flags. Every value is validated by its
ConfigDef; a bad value, an unreadable file or a malformed flag raises `ConfigError` with a
message naming where the value came from. Names that are not broker configs are kept in
`BrokerConfig.unknown` for the caller to warn about (Kafka logs and ignores them too).

Properties syntax is java.util.Properties': `#` and `!` start comment lines, `key=value`,
`key: value` and `key value` all work, a line ending in an odd number of backslashes continues
on the next one, and `\\t \\n \\r \\f \\uXXXX \\=` escapes are understood. Deviation: files are
read as UTF-8 (Java's Properties.load(InputStream) reads ISO-8859-1); ASCII files are identical.

Environment names: `JOSEF_` + the config name upper-cased with dots as `_`, and a literal
underscore written `__` (no Kafka config has one today): JOSEF_LOG_DIRS -> log.dirs,
JOSEF_NUM_PARTITIONS -> num.partitions, JOSEF_A__B -> a_b.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from josef.cluster.config import BrokerConfig, ConfigError

ENV_PREFIX = "JOSEF_"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_BLANK = " \t\f"
_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


def _odd_trailing_backslashes(line: str) -> bool:
    return (len(line) - len(line.rstrip("\\"))) % 2 == 1


def _unescape(text: str, where: str) -> str:
    if "\\" not in text:
        return text
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char != "\\" or i + 1 == n:
            out.append(char)
            i += 1
            continue
        escaped = text[i + 1]
        if escaped == "u":
            digits = text[i + 2:i + 6]
            if len(digits) != 4 or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise ConfigError(f"{where}: malformed \\uxxxx encoding")
            out.append(chr(int(digits, 16)))
            i += 6
            continue
        out.append(_ESCAPES.get(escaped, escaped))
        i += 2
    return "".join(out)


def _split_key_value(line: str) -> tuple[str, str]:
    """Split a logical line at the first unescaped '=', ':' or blank (Properties.load)."""
    i, n = 0, len(line)
    while i < n and line[i] not in "=:" + _BLANK:
        i += 2 if line[i] == "\\" else 1
    key_end = min(i, n)
    while i < n and line[i] in _BLANK:
        i += 1
    if i < n and line[i] in "=:":
        i += 1
    while i < n and line[i] in _BLANK:
        i += 1
    return line[:key_end], line[i:]


def parse_properties(text: str, where: str = "<properties>") -> dict[str, str]:
    """Parse java.util.Properties text; later duplicates win, as in Java."""
    lines = _LINE_BREAK.split(text)
    result: dict[str, str] = {}
    index = 0
    while index < len(lines):
        line_no = index + 1
        line = lines[index].lstrip(_BLANK)
        index += 1
        if not line or line[0] in "#!":
            continue
        while _odd_trailing_backslashes(line):
            line = line[:-1]
            if index == len(lines):
                break
            line += lines[index].lstrip(_BLANK)
            index += 1
        key, value = _split_key_value(line)
        at = f"{where} line {line_no}"
        result[_unescape(key, at)] = _unescape(value, at)
    return result


def load_properties_file(path: Path) -> dict[str, str]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8: {exc}") from exc
    return parse_properties(text, str(path))


def env_var_to_config_name(var: str) -> str | None:
    """JOSEF_LOG_DIRS -> "log.dirs"; None for variables without the JOSEF_ prefix."""
    if not var.startswith(ENV_PREFIX) or len(var) == len(ENV_PREFIX):
        return None
    body = var[len(ENV_PREFIX):].lower()
    return ".".join(part.replace("\0", "_") for part in body.replace("__", "\0").split("_"))


def config_name_to_env_var(name: str) -> str:
    """"log.dirs" -> "JOSEF_LOG_DIRS" (the inverse of env_var_to_config_name)."""
    return ENV_PREFIX + name.replace("_", "__").replace(".", "_").upper()


def parse_overrides(items: Sequence[str]) -> dict[str, str]:
    """`--override key=value` flags (Kafka's kafka-server-start syntax); later flags win."""
    result: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--override {item!r}: expected key=value")
        result[key.strip()] = value
    return result


def load_broker_config(
    config_file: Path | str | None = None,
    overrides: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> BrokerConfig:
    """Build the broker's settings from its three static sources (see module docstring).
    `environ` defaults to os.environ; tests pass their own mapping."""
    merged: dict[str, str] = {}
    origins: dict[str, str] = {}
    if config_file is not None:
        path = Path(config_file)
        for key, value in load_properties_file(path).items():
            merged[key], origins[key] = value, f"config file {path}"
    env = os.environ if environ is None else environ
    for var in sorted(env):
        name = env_var_to_config_name(var)
        if name is not None:
            merged[name], origins[name] = env[var], f"environment {var}"
    for key, value in parse_overrides(overrides).items():
        merged[key], origins[key] = value, "--override"
    try:
        return BrokerConfig(merged, origins=origins)
    except ConfigError as exc:
        origin = origins.get(exc.name or "")
        if origin is None:
            raise
        raise ConfigError(f"{exc} (from {origin})", exc.name) from exc
