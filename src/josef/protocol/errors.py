"""Kafka's protocol error codes: the int16 `error_code` values carried in responses.

`ErrorCode` lists every code Kafka defines up to 4.1 (numbers and names are wire facts from the
Kafka protocol guide, "Error Codes"). A handler reports an outcome by putting a member into a
response field (principle 5: protocol outcomes are values, not exceptions). `RETRIABLE` holds
the codes Kafka marks retriable (its client retries them without surfacing them to the user);
`describe` gives a one-line description for logs and CLI output.

Codes this module does not know (a newer Kafka) are still valid int16 values on the wire:
`describe` accepts any int, and decoders keep `error_code` fields as plain ints.
"""

from __future__ import annotations

from enum import IntEnum


class ErrorCode(IntEnum):
    UNKNOWN_SERVER_ERROR = -1
    NONE = 0
    OFFSET_OUT_OF_RANGE = 1
    CORRUPT_MESSAGE = 2
    UNKNOWN_TOPIC_OR_PARTITION = 3
    INVALID_FETCH_SIZE = 4
    LEADER_NOT_AVAILABLE = 5
    NOT_LEADER_OR_FOLLOWER = 6
    REQUEST_TIMED_OUT = 7
    BROKER_NOT_AVAILABLE = 8
    REPLICA_NOT_AVAILABLE = 9
    MESSAGE_TOO_LARGE = 10
    STALE_CONTROLLER_EPOCH = 11
    OFFSET_METADATA_TOO_LARGE = 12
    NETWORK_EXCEPTION = 13
    COORDINATOR_LOAD_IN_PROGRESS = 14
    COORDINATOR_NOT_AVAILABLE = 15
    NOT_COORDINATOR = 16
    INVALID_TOPIC_EXCEPTION = 17
    RECORD_LIST_TOO_LARGE = 18
    NOT_ENOUGH_REPLICAS = 19
    NOT_ENOUGH_REPLICAS_AFTER_APPEND = 20
    INVALID_REQUIRED_ACKS = 21
    ILLEGAL_GENERATION = 22
    INCONSISTENT_GROUP_PROTOCOL = 23
    INVALID_GROUP_ID = 24
    UNKNOWN_MEMBER_ID = 25
    INVALID_SESSION_TIMEOUT = 26
    REBALANCE_IN_PROGRESS = 27
    INVALID_COMMIT_OFFSET_SIZE = 28
    TOPIC_AUTHORIZATION_FAILED = 29
    GROUP_AUTHORIZATION_FAILED = 30
    CLUSTER_AUTHORIZATION_FAILED = 31
    INVALID_TIMESTAMP = 32
    UNSUPPORTED_SASL_MECHANISM = 33
    ILLEGAL_SASL_STATE = 34
    UNSUPPORTED_VERSION = 35
    TOPIC_ALREADY_EXISTS = 36
    INVALID_PARTITIONS = 37
    INVALID_REPLICATION_FACTOR = 38
    INVALID_REPLICA_ASSIGNMENT = 39
    INVALID_CONFIG = 40
    NOT_CONTROLLER = 41
    INVALID_REQUEST = 42
    UNSUPPORTED_FOR_MESSAGE_FORMAT = 43
    POLICY_VIOLATION = 44
    OUT_OF_ORDER_SEQUENCE_NUMBER = 45
    DUPLICATE_SEQUENCE_NUMBER = 46
    INVALID_PRODUCER_EPOCH = 47
    INVALID_TXN_STATE = 48
    INVALID_PRODUCER_ID_MAPPING = 49
    INVALID_TRANSACTION_TIMEOUT = 50
    CONCURRENT_TRANSACTIONS = 51
    TRANSACTION_COORDINATOR_FENCED = 52
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53
    SECURITY_DISABLED = 54
    OPERATION_NOT_ATTEMPTED = 55
    KAFKA_STORAGE_ERROR = 56
    LOG_DIR_NOT_FOUND = 57
    SASL_AUTHENTICATION_FAILED = 58
    UNKNOWN_PRODUCER_ID = 59
    REASSIGNMENT_IN_PROGRESS = 60
    DELEGATION_TOKEN_AUTH_DISABLED = 61
    DELEGATION_TOKEN_NOT_FOUND = 62
    DELEGATION_TOKEN_OWNER_MISMATCH = 63
    DELEGATION_TOKEN_REQUEST_NOT_ALLOWED = 64
    DELEGATION_TOKEN_AUTHORIZATION_FAILED = 65
    DELEGATION_TOKEN_EXPIRED = 66
    INVALID_PRINCIPAL_TYPE = 67
    NON_EMPTY_GROUP = 68
    GROUP_ID_NOT_FOUND = 69
    FETCH_SESSION_ID_NOT_FOUND = 70
    INVALID_FETCH_SESSION_EPOCH = 71
    LISTENER_NOT_FOUND = 72
    TOPIC_DELETION_DISABLED = 73
    FENCED_LEADER_EPOCH = 74
    UNKNOWN_LEADER_EPOCH = 75
    UNSUPPORTED_COMPRESSION_TYPE = 76
    STALE_BROKER_EPOCH = 77
    OFFSET_NOT_AVAILABLE = 78
    MEMBER_ID_REQUIRED = 79
    PREFERRED_LEADER_NOT_AVAILABLE = 80
    GROUP_MAX_SIZE_REACHED = 81
    FENCED_INSTANCE_ID = 82
    ELIGIBLE_LEADERS_NOT_AVAILABLE = 83
    ELECTION_NOT_NEEDED = 84
    NO_REASSIGNMENT_IN_PROGRESS = 85
    GROUP_SUBSCRIBED_TO_TOPIC = 86
    INVALID_RECORD = 87
    UNSTABLE_OFFSET_COMMIT = 88
    THROTTLING_QUOTA_EXCEEDED = 89
    PRODUCER_FENCED = 90
    RESOURCE_NOT_FOUND = 91
    DUPLICATE_RESOURCE = 92
    UNACCEPTABLE_CREDENTIAL = 93
    INCONSISTENT_VOTER_SET = 94
    INVALID_UPDATE_VERSION = 95
    FEATURE_UPDATE_FAILED = 96
    PRINCIPAL_DESERIALIZATION_FAILURE = 97
    SNAPSHOT_NOT_FOUND = 98
    POSITION_OUT_OF_RANGE = 99
    UNKNOWN_TOPIC_ID = 100
    DUPLICATE_BROKER_REGISTRATION = 101
    BROKER_ID_NOT_REGISTERED = 102
    INCONSISTENT_TOPIC_ID = 103
    INCONSISTENT_CLUSTER_ID = 104
    TRANSACTIONAL_ID_NOT_FOUND = 105
    FETCH_SESSION_TOPIC_ID_ERROR = 106
    INELIGIBLE_REPLICA = 107
    NEW_LEADER_ELECTED = 108
    OFFSET_MOVED_TO_TIERED_STORAGE = 109
    FENCED_MEMBER_EPOCH = 110
    UNRELEASED_INSTANCE_ID = 111
    UNSUPPORTED_ASSIGNOR = 112
    STALE_MEMBER_EPOCH = 113
    MISMATCHED_ENDPOINT_TYPE = 114
    UNSUPPORTED_ENDPOINT_TYPE = 115
    UNKNOWN_CONTROLLER_ID = 116
    UNKNOWN_SUBSCRIPTION_ID = 117
    TELEMETRY_TOO_LARGE = 118
    INVALID_REGISTRATION = 119
    TRANSACTION_ABORTABLE = 120
    INVALID_RECORD_STATE = 121
    SHARE_SESSION_NOT_FOUND = 122
    INVALID_SHARE_SESSION_EPOCH = 123
    FENCED_STATE_EPOCH = 124
    INVALID_VOTER_KEY = 125
    DUPLICATE_VOTER = 126
    VOTER_NOT_FOUND = 127
    INVALID_REGULAR_EXPRESSION = 128
    REBOOTSTRAP_REQUIRED = 129
    STREAMS_INVALID_TOPOLOGY = 130
    STREAMS_INVALID_TOPOLOGY_EPOCH = 131
    STREAMS_TOPOLOGY_FENCED = 132
    SHARE_SESSION_LIMIT_REACHED = 133


E = ErrorCode

# The codes whose Kafka exception is a RetriableException (the "Retriable" column of the
# protocol guide, Kafka 4.x; CONCURRENT_TRANSACTIONS became retriable there).
RETRIABLE: frozenset[ErrorCode] = frozenset(
    {
        E.CORRUPT_MESSAGE,
        E.UNKNOWN_TOPIC_OR_PARTITION,
        E.LEADER_NOT_AVAILABLE,
        E.NOT_LEADER_OR_FOLLOWER,
        E.REQUEST_TIMED_OUT,
        E.REPLICA_NOT_AVAILABLE,
        E.NETWORK_EXCEPTION,
        E.COORDINATOR_LOAD_IN_PROGRESS,
        E.COORDINATOR_NOT_AVAILABLE,
        E.NOT_COORDINATOR,
        E.NOT_ENOUGH_REPLICAS,
        E.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        E.NOT_CONTROLLER,
        E.CONCURRENT_TRANSACTIONS,
        E.KAFKA_STORAGE_ERROR,
        E.FETCH_SESSION_ID_NOT_FOUND,
        E.INVALID_FETCH_SESSION_EPOCH,
        E.LISTENER_NOT_FOUND,
        E.FENCED_LEADER_EPOCH,
        E.UNKNOWN_LEADER_EPOCH,
        E.OFFSET_NOT_AVAILABLE,
        E.PREFERRED_LEADER_NOT_AVAILABLE,
        E.ELIGIBLE_LEADERS_NOT_AVAILABLE,
        E.ELECTION_NOT_NEEDED,
        E.UNSTABLE_OFFSET_COMMIT,
        E.THROTTLING_QUOTA_EXCEEDED,
        E.UNKNOWN_TOPIC_ID,
        E.INCONSISTENT_TOPIC_ID,
        E.FETCH_SESSION_TOPIC_ID_ERROR,
        E.SHARE_SESSION_NOT_FOUND,
        E.INVALID_SHARE_SESSION_EPOCH,
        E.SHARE_SESSION_LIMIT_REACHED,
    }
)

_DESCRIPTIONS: dict[ErrorCode, str] = {
    E.UNKNOWN_SERVER_ERROR: "The server hit an unexpected error while processing the request.",
    E.NONE: "No error.",
    E.OFFSET_OUT_OF_RANGE: "The requested offset is outside the range of offsets in the log.",
    E.CORRUPT_MESSAGE: "The message failed its CRC check, exceeds the valid size, has a null "
    "key for a compacted topic, or is otherwise corrupt.",
    E.UNKNOWN_TOPIC_OR_PARTITION: "This server does not host this topic-partition.",
    E.INVALID_FETCH_SIZE: "The requested fetch size is invalid.",
    E.LEADER_NOT_AVAILABLE: "The partition has no leader; a leader election is in progress.",
    E.NOT_LEADER_OR_FOLLOWER: "This broker is not the leader (or, for requests any replica may "
    "serve, not a replica) of the partition.",
    E.REQUEST_TIMED_OUT: "The request timed out.",
    E.BROKER_NOT_AVAILABLE: "The broker is not available.",
    E.REPLICA_NOT_AVAILABLE: "The replica is not available for the requested topic-partition.",
    E.MESSAGE_TOO_LARGE: "The request held a message larger than the server accepts.",
    E.STALE_CONTROLLER_EPOCH: "The controller moved to another broker.",
    E.OFFSET_METADATA_TOO_LARGE: "The metadata of the offset commit is too large.",
    E.NETWORK_EXCEPTION: "The server disconnected before sending a response.",
    E.COORDINATOR_LOAD_IN_PROGRESS: "The coordinator is still loading its state.",
    E.COORDINATOR_NOT_AVAILABLE: "The coordinator is not available.",
    E.NOT_COORDINATOR: "This broker is not the coordinator for the key.",
    E.INVALID_TOPIC_EXCEPTION: "The request named an invalid topic.",
    E.RECORD_LIST_TOO_LARGE: "The record batch is larger than the configured segment size.",
    E.NOT_ENOUGH_REPLICAS: "Rejected: fewer in-sync replicas than min.insync.replicas.",
    E.NOT_ENOUGH_REPLICAS_AFTER_APPEND: "Written, but to fewer in-sync replicas than required.",
    E.INVALID_REQUIRED_ACKS: "The produce request has an invalid acks value.",
    E.ILLEGAL_GENERATION: "The group generation id is not valid.",
    E.INCONSISTENT_GROUP_PROTOCOL: "The member's protocols are incompatible with the group's, "
    "or the first member joined with an empty protocol type or list.",
    E.INVALID_GROUP_ID: "The group id is invalid.",
    E.UNKNOWN_MEMBER_ID: "The coordinator does not know this member.",
    E.INVALID_SESSION_TIMEOUT: "The session timeout is outside group.min.session.timeout.ms "
    "and group.max.session.timeout.ms.",
    E.REBALANCE_IN_PROGRESS: "The group is rebalancing; the member must rejoin.",
    E.INVALID_COMMIT_OFFSET_SIZE: "The size of the committed offset data is invalid.",
    E.TOPIC_AUTHORIZATION_FAILED: "Topic authorization failed.",
    E.GROUP_AUTHORIZATION_FAILED: "Group authorization failed.",
    E.CLUSTER_AUTHORIZATION_FAILED: "Cluster authorization failed.",
    E.INVALID_TIMESTAMP: "The message timestamp is outside the acceptable range.",
    E.UNSUPPORTED_SASL_MECHANISM: "The broker does not support the requested SASL mechanism.",
    E.ILLEGAL_SASL_STATE: "The request is not valid in the current SASL state.",
    E.UNSUPPORTED_VERSION: "The API version is not supported.",
    E.TOPIC_ALREADY_EXISTS: "A topic with this name already exists.",
    E.INVALID_PARTITIONS: "The number of partitions is invalid.",
    E.INVALID_REPLICATION_FACTOR: "The replication factor is below 1 or larger than the number "
    "of available brokers.",
    E.INVALID_REPLICA_ASSIGNMENT: "The replica assignment is invalid.",
    E.INVALID_CONFIG: "The configuration is invalid.",
    E.NOT_CONTROLLER: "This broker is not the controller of the cluster.",
    E.INVALID_REQUEST: "The request is malformed or was sent to an incompatible broker.",
    E.UNSUPPORTED_FOR_MESSAGE_FORMAT: "The broker's message format does not support the request.",
    E.POLICY_VIOLATION: "The request parameters violate the configured policy.",
    E.OUT_OF_ORDER_SEQUENCE_NUMBER: "The broker received an out of order sequence number.",
    E.DUPLICATE_SEQUENCE_NUMBER: "The broker received a duplicate sequence number.",
    E.INVALID_PRODUCER_EPOCH: "The producer used an old epoch.",
    E.INVALID_TXN_STATE: "The transactional operation is invalid in the current state.",
    E.INVALID_PRODUCER_ID_MAPPING: "The producer id is not assigned to this transactional id.",
    E.INVALID_TRANSACTION_TIMEOUT: "The transaction timeout exceeds transaction.max.timeout.ms.",
    E.CONCURRENT_TRANSACTIONS: "Another operation on the same transaction is in progress.",
    E.TRANSACTION_COORDINATOR_FENCED: "The transaction coordinator sending WriteTxnMarkers is no "
    "longer the coordinator for the producer.",
    E.TRANSACTIONAL_ID_AUTHORIZATION_FAILED: "Transactional id authorization failed.",
    E.SECURITY_DISABLED: "Security features are disabled.",
    E.OPERATION_NOT_ATTEMPTED: "The broker did not attempt this operation because another one "
    "in the same request failed.",
    E.KAFKA_STORAGE_ERROR: "A disk error occurred while accessing the log.",
    E.LOG_DIR_NOT_FOUND: "The log directory is not in the broker configuration.",
    E.SASL_AUTHENTICATION_FAILED: "SASL authentication failed.",
    E.UNKNOWN_PRODUCER_ID: "The broker has no state for this producer id (its records may "
    "have been removed by retention).",
    E.REASSIGNMENT_IN_PROGRESS: "A partition reassignment is in progress.",
    E.DELEGATION_TOKEN_AUTH_DISABLED: "Delegation tokens are not enabled.",
    E.DELEGATION_TOKEN_NOT_FOUND: "The delegation token was not found.",
    E.DELEGATION_TOKEN_OWNER_MISMATCH: "The principal is not the token's owner or renewer.",
    E.DELEGATION_TOKEN_REQUEST_NOT_ALLOWED: "Delegation token requests are not allowed on this "
    "kind of channel.",
    E.DELEGATION_TOKEN_AUTHORIZATION_FAILED: "Delegation token authorization failed.",
    E.DELEGATION_TOKEN_EXPIRED: "The delegation token has expired.",
    E.INVALID_PRINCIPAL_TYPE: "The principal type is not supported.",
    E.NON_EMPTY_GROUP: "The group is not empty.",
    E.GROUP_ID_NOT_FOUND: "The group id does not exist.",
    E.FETCH_SESSION_ID_NOT_FOUND: "The fetch session id was not found.",
    E.INVALID_FETCH_SESSION_EPOCH: "The fetch session epoch is invalid.",
    E.LISTENER_NOT_FOUND: "The leader has no listener matching the one this request came on.",
    E.TOPIC_DELETION_DISABLED: "Topic deletion is disabled.",
    E.FENCED_LEADER_EPOCH: "The request's leader epoch is older than the broker's.",
    E.UNKNOWN_LEADER_EPOCH: "The request's leader epoch is newer than the broker's.",
    E.UNSUPPORTED_COMPRESSION_TYPE: "The client does not support the partition's compression "
    "type.",
    E.STALE_BROKER_EPOCH: "The broker epoch has changed.",
    E.OFFSET_NOT_AVAILABLE: "The new leader's high watermark has not caught up yet, so offsets "
    "could go backwards.",
    E.MEMBER_ID_REQUIRED: "The member must obtain a member id before joining the group.",
    E.PREFERRED_LEADER_NOT_AVAILABLE: "The preferred leader is not available.",
    E.GROUP_MAX_SIZE_REACHED: "The group has reached its maximum size.",
    E.FENCED_INSTANCE_ID: "Another member with the same group.instance.id and a different "
    "member id has registered.",
    E.ELIGIBLE_LEADERS_NOT_AVAILABLE: "No eligible leader is available for the partition.",
    E.ELECTION_NOT_NEEDED: "The partition does not need a leader election.",
    E.NO_REASSIGNMENT_IN_PROGRESS: "No partition reassignment is in progress.",
    E.GROUP_SUBSCRIBED_TO_TOPIC: "Offsets of a topic the group is subscribed to cannot be "
    "deleted.",
    E.INVALID_RECORD: "The record failed broker-side validation.",
    E.UNSTABLE_OFFSET_COMMIT: "There are pending transactional offsets for the partition.",
    E.THROTTLING_QUOTA_EXCEEDED: "The throttling quota has been exceeded.",
    E.PRODUCER_FENCED: "A newer producer with the same transactional id has fenced this one.",
    E.RESOURCE_NOT_FOUND: "The request referred to a resource that does not exist.",
    E.DUPLICATE_RESOURCE: "The request referred to the same resource twice.",
    E.UNACCEPTABLE_CREDENTIAL: "The credential does not meet the acceptability criteria.",
    E.INCONSISTENT_VOTER_SET: "The sender or receiver of a voter request is not an expected "
    "voter.",
    E.INVALID_UPDATE_VERSION: "The update version is invalid.",
    E.FEATURE_UPDATE_FAILED: "Finalized features could not be updated.",
    E.PRINCIPAL_DESERIALIZATION_FAILURE: "The forwarded request's principal could not be "
    "deserialized.",
    E.SNAPSHOT_NOT_FOUND: "The requested snapshot was not found.",
    E.POSITION_OUT_OF_RANGE: "The requested position is outside the snapshot.",
    E.UNKNOWN_TOPIC_ID: "This server does not host this topic id.",
    E.DUPLICATE_BROKER_REGISTRATION: "This broker id is already registered.",
    E.BROKER_ID_NOT_REGISTERED: "This broker id is not registered.",
    E.INCONSISTENT_TOPIC_ID: "The log's topic id does not match the request's.",
    E.INCONSISTENT_CLUSTER_ID: "The request's cluster id does not match the server's.",
    E.TRANSACTIONAL_ID_NOT_FOUND: "The transactional id was not found.",
    E.FETCH_SESSION_TOPIC_ID_ERROR: "The fetch session used topic ids inconsistently.",
    E.INELIGIBLE_REPLICA: "The new ISR contains an ineligible replica.",
    E.NEW_LEADER_ELECTED: "The AlterPartition succeeded but the leader has changed.",
    E.OFFSET_MOVED_TO_TIERED_STORAGE: "The requested offset is in tiered storage.",
    E.FENCED_MEMBER_EPOCH: "The member epoch is fenced; the member must rejoin.",
    E.UNRELEASED_INSTANCE_ID: "The instance id is still used by another member of the group.",
    E.UNSUPPORTED_ASSIGNOR: "The group does not support the assignor or its versions.",
    E.STALE_MEMBER_EPOCH: "The member epoch is stale.",
    E.MISMATCHED_ENDPOINT_TYPE: "The request was sent to an endpoint of the wrong type.",
    E.UNSUPPORTED_ENDPOINT_TYPE: "This endpoint type is not supported.",
    E.UNKNOWN_CONTROLLER_ID: "The controller id is not known.",
    E.UNKNOWN_SUBSCRIPTION_ID: "The telemetry subscription id is unknown or outdated.",
    E.TELEMETRY_TOO_LARGE: "The pushed telemetry is larger than the broker accepts.",
    E.INVALID_REGISTRATION: "The controller considers the broker registration invalid.",
    E.TRANSACTION_ABORTABLE: "The transaction failed; the client may abort it and continue.",
    E.INVALID_RECORD_STATE: "The record state is invalid; the acknowledgement failed.",
    E.SHARE_SESSION_NOT_FOUND: "The share session was not found.",
    E.INVALID_SHARE_SESSION_EPOCH: "The share session epoch is invalid.",
    E.FENCED_STATE_EPOCH: "The share-group state epoch does not match.",
    E.INVALID_VOTER_KEY: "The voter key does not match the receiving replica's key.",
    E.DUPLICATE_VOTER: "The voter is already in the voter set.",
    E.VOTER_NOT_FOUND: "The voter is not in the voter set.",
    E.INVALID_REGULAR_EXPRESSION: "The regular expression is invalid.",
    E.REBOOTSTRAP_REQUIRED: "The client's metadata is stale; it should rebootstrap.",
    E.STREAMS_INVALID_TOPOLOGY: "The streams topology is invalid.",
    E.STREAMS_INVALID_TOPOLOGY_EPOCH: "The streams topology epoch is invalid.",
    E.STREAMS_TOPOLOGY_FENCED: "The streams topology epoch is outdated.",
    E.SHARE_SESSION_LIMIT_REACHED: "The limit of share sessions has been reached.",
}

del E


def describe(code: int) -> str:
    """One-line description of an error code; codes newer than this table are named by number."""
    try:
        return _DESCRIPTIONS[ErrorCode(code)]
    except ValueError:
        return f"Unknown error code {code}."
