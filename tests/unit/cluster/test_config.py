"""Broker/topic config definitions, loading precedence, parsing, resolution and DescribeConfigs."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from josef.cluster.config import (
    BROKER_CONFIGS,
    TOPIC_CONFIGS,
    AlterConfigOp,
    BrokerConfig,
    ConfigError,
    ConfigResourceType,
    ConfigSource,
    ConfigSynonymEntry,
    ConfigType,
    Listener,
    describe_broker_config,
    describe_topic_config,
    incremental_alter,
    resolve_topic_config,
    to_string,
    validate_topic_overrides,
)
from josef.cluster.properties import (
    config_name_to_env_var,
    env_var_to_config_name,
    load_broker_config,
    parse_overrides,
    parse_properties,
)
from josef.protocol.errors import ErrorCode
from josef.storage.api import LONG_MAX, LogConfig
from tools import gen_config_docs

HOUR_MS = 3_600_000


# --- loading and precedence -----------------------------------------------------------------

def test_defaults_without_any_source():
    cfg = load_broker_config(None, (), {})
    assert cfg.listeners == (Listener("PLAINTEXT", "localhost", 9092),)
    assert cfg.advertised_listeners == cfg.listeners
    assert cfg.log_dirs == (Path("./data"),)
    assert cfg.node_id == 1
    assert cfg.num_partitions == 1
    assert cfg.auto_create_topics_enable is True
    assert cfg.message_max_bytes == 1048588
    assert cfg.socket_request_max_bytes == 104857600
    assert cfg.unknown == ()
    assert cfg.default_log_config == LogConfig()  # storage's Kafka defaults agree with ours


def test_precedence_default_file_env_override(tmp_path):
    props = tmp_path / "server.properties"
    props.write_text(
        "num.partitions=2\ndefault.replication.factor=1\nlog.dirs=/from/file\n"
        "message.max.bytes=1000\n")
    env = {"JOSEF_NUM_PARTITIONS": "3", "JOSEF_LOG_DIRS": "/from/env", "PATH": "/bin"}
    cfg = load_broker_config(props, ["log.dirs=/a,/b"], env)
    assert cfg.message_max_bytes == 1000  # file beats default
    assert cfg.num_partitions == 3  # env beats file
    assert cfg.log_dirs == (Path("/a"), Path("/b"))  # override beats env
    assert cfg.fetch_max_bytes == 57671680  # default
    assert cfg.origins["message.max.bytes"] == f"config file {props}"
    assert cfg.origins["num.partitions"] == "environment JOSEF_NUM_PARTITIONS"
    assert cfg.origins["log.dirs"] == "--override"
    assert cfg.lookup("num.partitions") == (3, ConfigSource.STATIC_BROKER_CONFIG)
    assert cfg.lookup("fetch.max.bytes") == (57671680, ConfigSource.DEFAULT_CONFIG)


def test_later_override_flag_wins_and_value_may_contain_equals():
    assert parse_overrides(["a=1", "b=x=y", "a=2"]) == {"a": "2", "b": "x=y"}
    with pytest.raises(ConfigError):
        parse_overrides(["novalue"])
    with pytest.raises(ConfigError):
        parse_overrides(["=1"])


def test_error_names_the_source_of_a_bad_value(tmp_path):
    props = tmp_path / "p.properties"
    props.write_text("num.partitions=zero\n")
    with pytest.raises(ConfigError, match=r"num.partitions.*config file") as info:
        load_broker_config(props, (), {})
    assert info.value.error_code == ErrorCode.INVALID_CONFIG
    with pytest.raises(ConfigError, match="JOSEF_NUM_PARTITIONS"):
        load_broker_config(None, (), {"JOSEF_NUM_PARTITIONS": "0"})


def test_missing_config_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_broker_config(tmp_path / "absent.properties", (), {})


def test_unknown_broker_names_are_reported_not_fatal():
    cfg = load_broker_config(None, ["no.such.config=1"], {"JOSEF_SOMETHING_ELSE": "x"})
    assert cfg.unknown == ("no.such.config", "something.else")


def test_env_names():
    assert env_var_to_config_name("JOSEF_LOG_DIRS") == "log.dirs"
    assert env_var_to_config_name("JOSEF_LOG_RETENTION_HOURS") == "log.retention.hours"
    assert env_var_to_config_name("JOSEF_A__B_C") == "a_b.c"
    assert env_var_to_config_name("JOSEF_") is None
    assert env_var_to_config_name("HOME") is None
    for name in [*BROKER_CONFIGS, "a_b.c"]:
        assert env_var_to_config_name(config_name_to_env_var(name)) == name


# --- properties syntax ----------------------------------------------------------------------

def test_properties_syntax():
    text = (
        "# comment\n"
        "   ! another comment\n"
        "\n"
        "plain=value\n"
        "colon : spaced value  \n"
        "blank   separated\n"
        "  indented.key=v\n"
        "continued = first \\\n"
        "     second\\\n"
        "third\n"
        "escaped\\=key=x\n"
        "unicode=\\u00e9\\tend\n"
        "even.backslashes=a\\\\\n"
        "not.continued=b\n"
        "empty=\n"
        "bare\n"
        "dup=1\n"
        "dup=2\r\n"
        "crlf=yes\r\n"
        "# comment ending in backslash \\\n"
        "after.comment=ok\n"
        "last=x\\"
    )
    assert parse_properties(text) == {
        "plain": "value",
        "colon": "spaced value  ",
        "blank": "separated",
        "indented.key": "v",
        "continued": "first secondthird",
        "escaped=key": "x",
        "unicode": "\u00e9\tend",
        "even.backslashes": "a\\",
        "not.continued": "b",
        "empty": "",
        "bare": "",
        "dup": "2",
        "crlf": "yes",
        "after.comment": "ok",
        "last": "x",
    }


def test_properties_malformed_unicode_escape():
    with pytest.raises(ConfigError, match="line 2"):
        parse_properties("a=1\nb=\\u12", "f.properties")


_KEY_CHARS = st.characters(codec="utf-8", exclude_characters="\r\n")


def _escape(text: str, is_key: bool) -> str:
    out = []
    for i, char in enumerate(text):
        if char == "\\" or char in "=:#!" or (char in " \t\f" and (is_key or i == 0)):
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


@given(st.dictionaries(st.text(_KEY_CHARS, min_size=1), st.text(_KEY_CHARS)))
def test_properties_round_trip(entries):
    text = "\n".join(f"{_escape(k, True)}={_escape(v, False)}" for k, v in entries.items())
    assert parse_properties(text) == entries


# --- value parsing --------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("auto.create.topics.enable", "TRUE", True),
        ("auto.create.topics.enable", " false ", False),
        ("num.partitions", " 12 ", 12),
        ("num.partitions", "+5", 5),
        ("num.partitions", "2147483647", 2**31 - 1),
        ("offsets.topic.replication.factor", "32767", 32767),
        ("log.retention.bytes", "-1", -1),
        ("log.retention.ms", "-1", -1),
        ("log.flush.interval.messages", str(LONG_MAX), LONG_MAX),
        ("log.cleaner.min.cleanable.ratio", "0.25", 0.25),
        ("log.cleaner.min.cleanable.ratio", "1", 1.0),
        ("log.cleaner.min.cleanable.ratio", "1e-1", 0.1),
        ("log.cleanup.policy", "compact, delete", ("compact", "delete")),
        ("log.cleanup.policy", "", ()),
        ("log.message.timestamp.type", "LogAppendTime", "LogAppendTime"),
        ("log.dirs", " /a/b ", "/a/b"),
    ],
)
def test_broker_value_parsing(name, raw, expected):
    assert BROKER_CONFIGS[name].parse(raw) == expected


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("auto.create.topics.enable", "yes", "either true or false"),
        ("auto.create.topics.enable", "1", "either true or false"),
        ("num.partitions", "1.5", "Not a number of type INT"),
        ("num.partitions", "2147483648", "Not a number of type INT"),
        ("num.partitions", "1_000", "Not a number of type INT"),
        ("num.partitions", "", "Not a number of type INT"),
        ("num.partitions", "0", "at least 1"),
        ("offsets.topic.replication.factor", "32768", "Not a number of type SHORT"),
        ("log.retention.bytes", "9223372036854775808", "Not a number of type LONG"),
        ("log.segment.bytes", "13", "at least 14"),
        ("log.cleaner.min.cleanable.ratio", "1.5", "no more than 1"),
        ("log.cleaner.min.cleanable.ratio", "nan", "Not a number of type DOUBLE"),
        ("log.cleanup.policy", "compact,bogus", "String must be one of: compact, delete"),
        ("log.cleanup.policy", "compact,,delete", "String must be one of"),
        ("log.message.timestamp.type", "createtime", "String must be one of"),
        ("compression.type", "brotli", "String must be one of"),
    ],
)
def test_bad_values_raise_invalid_config(name, raw, message):
    with pytest.raises(ConfigError, match=message) as info:
        BROKER_CONFIGS[name].parse(raw)
    assert info.value.error_code == ErrorCode.INVALID_CONFIG
    assert info.value.name == name


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_long_parse_and_print_round_trip(n):
    definition = BROKER_CONFIGS["log.retention.ms"]
    assert definition.parse(str(n)) == n
    assert to_string(definition.parse(to_string(n) or "")) == str(n)


_ALL_DEFS = sorted([*BROKER_CONFIGS.values(), *TOPIC_CONFIGS.values()], key=lambda d: d.name)


@given(st.sampled_from(_ALL_DEFS), st.one_of(st.text(), st.from_regex(r"-?[0-9]{1,6000}")))
def test_any_text_parses_or_raises_config_error(definition, raw):
    # Values arrive from peers (CreateTopics, AlterConfigs): nothing else may escape.
    try:
        value = definition.parse(raw)
    except ConfigError as exc:
        assert len(str(exc)) < 1000
    else:
        assert definition.parse(to_string(value) or "") == value


@given(st.sampled_from(sorted(BROKER_CONFIGS)), st.text())
def test_any_broker_setting_builds_or_raises_config_error(name, raw):
    try:
        BrokerConfig({name: raw})
    except ConfigError:
        pass


def test_to_string_matches_kafka_printing():
    assert to_string(True) == "true"
    assert to_string(("compact", "delete")) == "compact,delete"
    assert to_string(0.5) == "0.5"
    assert to_string(None) is None


# --- listeners, node id, log dirs -----------------------------------------------------------

def test_listeners_and_advertised_listeners():
    cfg = BrokerConfig({
        "listeners": "PLAINTEXT://[::1]:19092",
        "advertised.listeners": "plaintext://broker.example:9092",
    })
    assert cfg.listeners == (Listener("PLAINTEXT", "::1", 19092),)
    assert cfg.advertised_listeners == (Listener("PLAINTEXT", "broker.example", 9092),)
    empty_host = BrokerConfig({"listeners": "PLAINTEXT://:9092"})
    assert empty_host.listeners[0].host == ""
    assert empty_host.advertised_listeners[0].host != ""


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"listeners": "localhost:9092"}, "expected NAME://host:port"),
        ({"listeners": "PLAINTEXT://localhost:99999"}, "Invalid port"),
        ({"listeners": "PLAINTEXT://localhost:" + "9" * 5000}, "expected NAME://host:port"),
        ({"listeners": "PLAINTEXT://a:1,PLAINTEXT://b:2"}, "different name"),
        ({"listeners": "INTERNAL://a:1"}, "No security protocol"),
        ({"listeners": "SSL://a:1"}, "supports only PLAINTEXT"),
        ({"listeners": " , "}, "at least one listener"),
        ({"listeners": "PLAINTEXT://0.0.0.0:9092"}, "nonroutable"),
        ({"advertised.listeners": "PLAINTEXT://0.0.0.0:9092"}, "nonroutable"),
        ({"advertised.listeners": "SASL_PLAINTEXT://a:1"}, "supports only PLAINTEXT"),
        ({"node.id": "2", "broker.id": "3"}, "must be equal"),
        ({"node.id": "-2"}, "at least 0"),
        ({"log.dirs": " , "}, "names no directory"),
    ],
)
def test_invalid_broker_settings(settings, message):
    with pytest.raises(ConfigError, match=message):
        BrokerConfig(settings)


def test_wildcard_listener_with_routable_advertised_listener_is_fine():
    cfg = BrokerConfig({
        "listeners": "PLAINTEXT://0.0.0.0:9092",
        "advertised.listeners": "PLAINTEXT://10.0.0.5:9092",
    })
    assert cfg.advertised_listeners[0].host == "10.0.0.5"


def test_node_id_and_broker_id():
    assert BrokerConfig({"broker.id": "7"}).node_id == 7
    assert BrokerConfig({"node.id": "7", "broker.id": "7"}).node_id == 7
    assert BrokerConfig({"node.id": "0"}).node_id == 0


def test_log_dir_fallback_and_log_dirs_list():
    assert BrokerConfig({"log.dir": "/x"}).log_dirs == (Path("/x"),)
    assert BrokerConfig({"log.dir": "/x", "log.dirs": "/y, /z,"}).log_dirs == (
        Path("/y"), Path("/z"))


# --- topic configs --------------------------------------------------------------------------

def test_topic_overrides_produce_log_config():
    broker = BrokerConfig({"log.segment.bytes": "5000", "log.retention.hours": "1"})
    config = resolve_topic_config(broker, {
        "cleanup.policy": "compact,delete",
        "retention.ms": "-1",
        "segment.ms": "60000",
        "max.message.bytes": "2000",
        "message.timestamp.type": "LogAppendTime",
        "min.cleanable.dirty.ratio": "0.1",
        "flush.messages": "1",
        "min.compaction.lag.ms": "10",
        "delete.retention.ms": "0",
    })
    assert config == LogConfig(
        segment_bytes=5000,  # broker static setting
        segment_ms=60000,
        retention_ms=-1,  # override beats log.retention.hours
        cleanup_policy=frozenset({"compact", "delete"}),
        max_message_bytes=2000,
        message_timestamp_type="LogAppendTime",
        min_cleanable_dirty_ratio=0.1,
        flush_messages=1,
        min_compaction_lag_ms=10,
        delete_retention_ms=0,
    )
    assert config.compact and config.delete


@pytest.mark.parametrize(
    ("settings", "expected_ms"),
    [
        ({}, 168 * HOUR_MS),
        ({"log.retention.hours": "2"}, 2 * HOUR_MS),
        ({"log.retention.hours": "2", "log.retention.minutes": "5"}, 5 * 60_000),
        ({"log.retention.minutes": "5", "log.retention.ms": "1234"}, 1234),
        ({"log.retention.hours": "-1"}, -1),
        ({"log.retention.minutes": "-5"}, -1),
        ({"log.retention.ms": "-1"}, -1),
    ],
)
def test_retention_synonym_precedence(settings, expected_ms):
    assert resolve_topic_config(BrokerConfig(settings), {}).retention_ms == expected_ms


def test_other_unit_converted_and_fallback_synonyms():
    broker = BrokerConfig({
        "log.roll.hours": "3", "log.roll.jitter.hours": "1",
        "log.flush.scheduler.interval.ms": "500", "message.max.bytes": "777",
        "log.cleaner.min.cleanable.ratio": "0.75", "log.segment.delete.delay.ms": "5",
    })
    config = resolve_topic_config(broker, {})
    assert config.segment_ms == 3 * HOUR_MS
    assert config.segment_jitter_ms == HOUR_MS
    assert config.flush_ms == 500  # log.flush.interval.ms unset -> scheduler interval
    assert config.max_message_bytes == 777
    assert config.min_cleanable_dirty_ratio == 0.75
    assert config.file_delete_delay_ms == 5
    both = BrokerConfig({"log.flush.interval.ms": "100", "log.flush.scheduler.interval.ms": "9"})
    assert resolve_topic_config(both, {}).flush_ms == 100


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"retention.hours": "1"}, "Unknown topic config name: retention.hours"),
        ({"log.retention.ms": "1"}, "Unknown topic config name"),
        ({"retention.ms": None}, "Null value not supported"),
        ({"retention.ms": "-2"}, "at least -1"),
        ({"segment.bytes": "10"}, "at least 14"),
        ({"cleanup.policy": "compacted"}, "String must be one of"),
        ({"min.compaction.lag.ms": "10", "max.compaction.lag.ms": "5"}, "conflict"),
    ],
)
def test_invalid_topic_overrides(overrides, message):
    with pytest.raises(ConfigError, match=message) as info:
        resolve_topic_config(BrokerConfig(), overrides)
    assert info.value.error_code == ErrorCode.INVALID_CONFIG


def test_validate_topic_overrides_returns_typed_values():
    assert validate_topic_overrides({"preallocate": "TRUE", "retention.bytes": "10"}) == {
        "preallocate": True, "retention.bytes": 10}


# --- DescribeConfigs ------------------------------------------------------------------------

def _entry(entries, name):
    (entry,) = [e for e in entries if e.name == name]
    return entry


def test_describe_topic_retention_synonyms_in_kafka_order():
    static = BrokerConfig({"log.retention.minutes": "30", "log.retention.hours": "24"})
    broker = static.with_dynamic(
        dynamic_broker={"log.retention.hours": "5"},
        dynamic_default={"log.retention.ms": "1000"},
    )
    entry = _entry(describe_topic_config(broker, {"retention.ms": "42"}), "retention.ms")
    assert entry.value == "42"
    assert entry.source == ConfigSource.DYNAMIC_TOPIC_CONFIG
    assert not entry.is_default and not entry.read_only and not entry.is_sensitive
    assert entry.config_type == ConfigType.LONG
    assert entry.synonyms == (
        ConfigSynonymEntry("retention.ms", "42", ConfigSource.DYNAMIC_TOPIC_CONFIG),
        ConfigSynonymEntry("log.retention.hours", "5", ConfigSource.DYNAMIC_BROKER_CONFIG),
        ConfigSynonymEntry("log.retention.ms", "1000",
                           ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG),
        ConfigSynonymEntry("log.retention.minutes", "30", ConfigSource.STATIC_BROKER_CONFIG),
        ConfigSynonymEntry("log.retention.hours", "24", ConfigSource.STATIC_BROKER_CONFIG),
        ConfigSynonymEntry("log.retention.hours", "168", ConfigSource.DEFAULT_CONFIG),
    )
    # Without the override: log.retention.ms wins by name (Kafka's KafkaConfig resolution),
    # and the source is the layer it came from.
    entry = _entry(describe_topic_config(broker, {}), "retention.ms")
    assert (entry.value, entry.source) == ("1000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG)
    assert resolve_topic_config(broker, {}).retention_ms == 1000


def test_describe_topic_defaults():
    entries = describe_topic_config(BrokerConfig(), {})
    assert [e.name for e in entries] == sorted(TOPIC_CONFIGS)
    segment_ms = _entry(entries, "segment.ms")
    assert segment_ms.value == "604800000"
    assert segment_ms.source == ConfigSource.DEFAULT_CONFIG and segment_ms.is_default
    assert segment_ms.synonyms == (
        ConfigSynonymEntry("log.roll.hours", "168", ConfigSource.DEFAULT_CONFIG),)
    policy = _entry(entries, "cleanup.policy")
    assert (policy.value, policy.config_type) == ("delete", ConfigType.LIST)
    preallocate = _entry(entries, "preallocate")
    assert "accepted, no effect" in preallocate.documentation
    assert _entry(entries, "min.cleanable.dirty.ratio").value == "0.5"


def test_describe_topic_filters_names():
    entries = describe_topic_config(BrokerConfig(), {}, names={"retention.ms", "nonexistent"})
    assert [e.name for e in entries] == ["retention.ms"]


def test_describe_broker():
    broker = BrokerConfig({"log.retention.ms": "99", "num.partitions": "4"}).with_dynamic(
        dynamic_default={"log.retention.hours": "2"})
    entries = describe_broker_config(broker)
    assert [e.name for e in entries] == sorted(BROKER_CONFIGS)
    partitions = _entry(entries, "num.partitions")
    assert (partitions.value, partitions.source, partitions.read_only) == (
        "4", ConfigSource.STATIC_BROKER_CONFIG, True)
    assert partitions.synonyms == (
        ConfigSynonymEntry("num.partitions", "4", ConfigSource.STATIC_BROKER_CONFIG),
        ConfigSynonymEntry("num.partitions", "1", ConfigSource.DEFAULT_CONFIG),
    )
    hours = _entry(entries, "log.retention.hours")
    assert hours.value == "2" and not hours.read_only
    assert hours.source == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG
    # Source-major order: the dynamic default for hours, the static ms, the default hours.
    assert [s.name for s in hours.synonyms] == [
        "log.retention.hours", "log.retention.ms", "log.retention.hours"]
    # Describing log.retention.ms drops the synonyms listed before its own name (as Kafka).
    ms = _entry(entries, "log.retention.ms")
    assert ms.synonyms == (
        ConfigSynonymEntry("log.retention.ms", "99", ConfigSource.STATIC_BROKER_CONFIG),
        ConfigSynonymEntry("log.retention.hours", "168", ConfigSource.DEFAULT_CONFIG),
    )
    unset = _entry(entries, "advertised.listeners")
    assert (unset.value, unset.source, unset.synonyms) == (None, ConfigSource.DEFAULT_CONFIG, ())


def test_describe_cluster_default_resource():
    broker = BrokerConfig({"num.partitions": "4"}).with_dynamic(
        dynamic_default={"message.max.bytes": "5000"})
    entries = describe_broker_config(broker, per_broker=False)
    assert [(e.name, e.value, e.source) for e in entries] == [
        ("message.max.bytes", "5000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG)]
    assert entries[0].synonyms == (ConfigSynonymEntry(
        "message.max.bytes", "5000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG),)


def test_dynamic_updates_are_validated():
    with pytest.raises(ConfigError, match="Cannot update these configs dynamically"):
        BrokerConfig().with_dynamic(dynamic_broker={"listeners": "PLAINTEXT://x:1"})
    with pytest.raises(ConfigError, match="Unknown broker config name"):
        BrokerConfig().with_dynamic(dynamic_default={"bogus": "1"})
    with pytest.raises(ConfigError, match="at least 14"):
        BrokerConfig().with_dynamic(dynamic_default={"log.segment.bytes": "1"})
    updated = BrokerConfig({"num.partitions": "3"}).with_dynamic(
        dynamic_broker={"log.segment.bytes": "2000"})
    assert updated.num_partitions == 3
    assert updated.default_log_config.segment_bytes == 2000
    assert BrokerConfig({"x.y": "1"}).with_dynamic().unknown == ("x.y",)
    # Replacing one layer keeps the other.
    again = updated.with_dynamic(dynamic_default={"message.max.bytes": "10"})
    assert again.default_log_config.segment_bytes == 2000
    assert again.default_log_config.max_message_bytes == 10


# --- IncrementalAlterConfigs ---------------------------------------------------------------

TOPIC = ConfigResourceType.TOPIC
SET, DELETE, APPEND, SUBTRACT = (
    AlterConfigOp.SET, AlterConfigOp.DELETE, AlterConfigOp.APPEND, AlterConfigOp.SUBTRACT)


def test_incremental_alter_topic():
    current = {"retention.ms": "1000", "segment.ms": "5000"}
    new = incremental_alter(TOPIC, current, [
        ("retention.ms", SET, "2000"),
        ("segment.ms", DELETE, None),
        ("flush.ms", DELETE, None),  # absent: not an error
        ("cleanup.policy", APPEND, "compact"),  # starts from the default "delete"
    ])
    assert new == {"retention.ms": "2000", "cleanup.policy": "delete,compact"}
    assert current == {"retention.ms": "1000", "segment.ms": "5000"}  # not mutated
    assert incremental_alter(TOPIC, new, [("cleanup.policy", APPEND, "compact,delete")]) == new
    assert incremental_alter(TOPIC, {}, [("cleanup.policy", SUBTRACT, "compact")]) == {
        "cleanup.policy": "delete"}
    assert incremental_alter(TOPIC, new, [("cleanup.policy", SUBTRACT, "delete, compact")])[
        "cleanup.policy"] == ""
    assert resolve_topic_config(BrokerConfig(), new).cleanup_policy == {"delete", "compact"}


@pytest.mark.parametrize(
    ("resource", "message"),
    [
        ((TOPIC, "retention.hours", SET, "1"), "Unknown topic config name"),
        ((ConfigResourceType.BROKER, "bogus", SET, "1"), "Unknown broker config name"),
        ((TOPIC, "retention.ms", APPEND, "1"), "append is not allowed"),
        ((TOPIC, "retention.ms", SUBTRACT, "1"), "subtract is not allowed"),
        ((TOPIC, "retention.ms", SET, None), "Null value not supported"),
    ],
)
def test_incremental_alter_errors(resource, message):
    resource_type, name, operation, value = resource
    with pytest.raises(ConfigError, match=message) as info:
        incremental_alter(resource_type, {}, [(name, operation, value)])
    assert info.value.error_code == ErrorCode.INVALID_CONFIG


def test_incremental_alter_broker_dynamic_layer():
    broker = BrokerConfig()
    layer = incremental_alter(
        ConfigResourceType.BROKER, {}, [("log.cleanup.policy", APPEND, "compact")])
    assert broker.with_dynamic(dynamic_default=layer).default_log_config.compact


# --- the tables themselves and the generated docs -------------------------------------------

def test_every_config_is_documented_with_a_status():
    for definition in [*BROKER_CONFIGS.values(), *TOPIC_CONFIGS.values()]:
        assert definition.doc.endswith("."), definition.name
        assert definition.honoured or definition.note, definition.name
        assert definition.type is not ConfigType.UNKNOWN


def test_topic_defaults_match_their_broker_synonyms_defaults():
    # A topic config's own default is what its broker synonyms' defaults resolve to.
    for name, (value, source) in (
        (e.name, (e.value, e.source)) for e in describe_topic_config(BrokerConfig(), {})
    ):
        assert source == ConfigSource.DEFAULT_CONFIG
        assert value == to_string(TOPIC_CONFIGS[name].default_value()), name


def test_configuration_docs_are_fresh():
    assert gen_config_docs.DOC_PATH.read_text(encoding="utf-8") == gen_config_docs.render(), (
        "docs/configuration.md is stale: run `python -m tools.gen_config_docs`")
