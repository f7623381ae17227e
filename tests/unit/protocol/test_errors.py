"""ErrorCode numbers, names, retriable flags and descriptions match Kafka's table."""

from __future__ import annotations

import pytest

from josef.protocol.errors import RETRIABLE, ErrorCode, describe


def test_values_unique_and_contiguous() -> None:
    values = [member.value for member in ErrorCode]
    assert len(values) == len(set(values))
    # Kafka's codes run without gaps from -1 to the newest one.
    assert sorted(values) == list(range(-1, max(values) + 1))
    assert max(values) >= 133  # SHARE_SESSION_LIMIT_REACHED (Kafka 4.1)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("UNKNOWN_SERVER_ERROR", -1),
        ("NONE", 0),
        ("OFFSET_OUT_OF_RANGE", 1),
        ("CORRUPT_MESSAGE", 2),
        ("UNKNOWN_TOPIC_OR_PARTITION", 3),
        ("NOT_LEADER_OR_FOLLOWER", 6),
        ("MESSAGE_TOO_LARGE", 10),
        ("COORDINATOR_NOT_AVAILABLE", 15),
        ("ILLEGAL_GENERATION", 22),
        ("UNSUPPORTED_VERSION", 35),
        ("TOPIC_ALREADY_EXISTS", 36),
        ("OUT_OF_ORDER_SEQUENCE_NUMBER", 45),
        ("DUPLICATE_SEQUENCE_NUMBER", 46),
        ("INVALID_PRODUCER_EPOCH", 47),
        ("UNKNOWN_PRODUCER_ID", 59),
        ("MEMBER_ID_REQUIRED", 79),
        ("FENCED_INSTANCE_ID", 82),
        ("PRODUCER_FENCED", 90),
        ("UNKNOWN_TOPIC_ID", 100),
        ("TRANSACTION_ABORTABLE", 120),
        ("INVALID_RECORD_STATE", 121),
        ("SHARE_SESSION_NOT_FOUND", 122),
        ("VOTER_NOT_FOUND", 127),
    ],
)
def test_well_known_codes(name: str, value: int) -> None:
    assert ErrorCode[name] == value
    assert ErrorCode(value).name == name


@pytest.mark.parametrize(
    "code",
    [
        ErrorCode.CORRUPT_MESSAGE,
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        ErrorCode.LEADER_NOT_AVAILABLE,
        ErrorCode.NOT_LEADER_OR_FOLLOWER,
        ErrorCode.REQUEST_TIMED_OUT,
        ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
        ErrorCode.COORDINATOR_NOT_AVAILABLE,
        ErrorCode.NOT_COORDINATOR,
        ErrorCode.NOT_ENOUGH_REPLICAS,
        ErrorCode.FENCED_LEADER_EPOCH,
        ErrorCode.UNKNOWN_TOPIC_ID,
        ErrorCode.THROTTLING_QUOTA_EXCEEDED,
    ],
)
def test_retriable(code: ErrorCode) -> None:
    assert code in RETRIABLE


@pytest.mark.parametrize(
    "code",
    [
        ErrorCode.UNKNOWN_SERVER_ERROR,
        ErrorCode.NONE,
        ErrorCode.OFFSET_OUT_OF_RANGE,
        ErrorCode.MESSAGE_TOO_LARGE,
        ErrorCode.ILLEGAL_GENERATION,
        ErrorCode.UNKNOWN_MEMBER_ID,
        ErrorCode.REBALANCE_IN_PROGRESS,
        ErrorCode.UNSUPPORTED_VERSION,
        ErrorCode.TOPIC_ALREADY_EXISTS,
        ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
        ErrorCode.INVALID_PRODUCER_EPOCH,
        ErrorCode.UNKNOWN_PRODUCER_ID,
        ErrorCode.PRODUCER_FENCED,
        ErrorCode.FENCED_INSTANCE_ID,
    ],
)
def test_not_retriable(code: ErrorCode) -> None:
    assert code not in RETRIABLE


def test_every_code_described() -> None:
    for code in ErrorCode:
        text = describe(code)
        assert text and text.endswith(".")
    assert describe(int(ErrorCode.UNSUPPORTED_VERSION)) == describe(ErrorCode.UNSUPPORTED_VERSION)


def test_unknown_code_described_by_number() -> None:
    assert "31000" in describe(31000)
