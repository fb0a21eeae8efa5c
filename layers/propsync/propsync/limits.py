"""Limits of the API and of DynamoDB, in one place.

Sizes are in bytes of UTF-8; DynamoDB counts 1 KB as 1024 bytes.
"""

MAX_PROPERTY_NAME_BYTES = 256
MAX_PROPERTY_VALUE_BYTES = 16 * 1024  # the original service: "under 16 KB" per value
MAX_VALUE_NESTING = 64  # lists/objects inside each other; deeper is almost surely abuse

MAX_ID_TYPE_CHARS = 64
MAX_ID_VALUE_BYTES = 1024  # the identity item's partition key must stay under 2048 bytes

# DynamoDB expression limits: each expression string at most 4 KB, and at most
# 300 operators/functions. We count the update and the condition expression of
# one request together against the operator limit, which is stricter than
# needed and therefore safe. That cap (32 properties per request) keeps every
# expression under 4 KB, so the size is never checked at run time: the tests
# build the largest request and measure it against MAX_EXPRESSION_BYTES.
MAX_EXPRESSION_BYTES = 4 * 1024
MAX_EXPRESSION_OPERATORS = 300
MAX_ITEM_BYTES = 400 * 1024

# Bounded retries of a conditional write that lost a race (each retry carries
# only the properties that still win).
MAX_CONDITIONAL_RETRIES = 8

DEFAULT_MAX_FUTURE_SKEW_SECONDS = 3600.0
MAX_FUTURE_SKEW_ENV = "PROPSYNC_MAX_FUTURE_SKEW_SECONDS"

# Deleted properties (tombstones) stay on a customer for this long after
# their update time, then are compacted into its horizon (store.compaction;
# docs/DECISIONS.md: "Deleted properties are compacted into a horizon"): an
# update older than that may lose where the customer holds no value. Longer
# than SQS keeps a message (14 days at most), so that a redriven command is
# decided exactly.
DEFAULT_TOMBSTONE_GRACE_DAYS = 30.0
TOMBSTONE_GRACE_ENV = "PROPSYNC_TOMBSTONE_GRACE_DAYS"

# The tracking API (the original service's limits where known).
MAX_BATCH_COMMANDS = 50
MAX_COMMAND_BYTES = 800 * 1024
MAX_REQUEST_BYTES = 6 * 1024 * 1024  # Lambda's synchronous payload limit
# Lambda's limit holds for the answer too, counted on the proxy integration's
# envelope (http_json.payload_size); only an answer that repeats stored
# values (the attributes route) can come near it.
MAX_RESPONSE_BYTES = MAX_REQUEST_BYTES
MAX_CONCURRENT_COMMANDS = 16  # threads per batch; also the DynamoDB connection pool size

# Imports. An execution record (one DynamoDB item, 400 KB at most) stores the
# plan (mapping, header, chunk list) and the index of every chunk done and
# failed; the two index sets stay under two thirds of the chunk list's size, so
# a plan of at most 200 KB leaves the record under about 340 KB.
MAX_PLAN_BYTES = 200 * 1024
MAX_MAPPING_BYTES = 128 * 1024  # mapping.json; about 1,500 mapped columns
MAX_KEY_BYTES = 1024  # S3's limit on an object key (reports and parts included)
# The import routes: a preview reads the first lines of a file (its header and
# up to MAX_PREVIEW_ROWS rows fit in 64 KB unless rows are very long), and a
# file is uploaded straight to S3 with one POST, at most 5 GB (S3's limit for
# a single upload; docs/DECISIONS.md: "Imports through the API").
MAX_PREVIEW_SAMPLE_BYTES = 64 * 1024
MAX_PREVIEW_ROWS = 20
MAX_UPLOAD_BYTES = 5 * 1024**3

# Merges: how deep a chain of merged customers is followed (each link points
# at an older customer, so a chain cannot cycle; reads shorten the chains they
# follow, so this is only a guard against a damaged table), and
# how often a command looks at its ids again when concurrent commands changed
# them between its lookup and its writes.
MAX_MERGE_HOPS = 100
MAX_RESOLVE_ROUNDS = 8
# A customer keeps at most this many values of one soft id type (the original
# product's rule); past it, the one it was least recently identified by goes.
MAX_SOFT_IDS_PER_TYPE = 64

# The attributes route: how many attributes one request may ask for (the
# original SDK asks for one per property, id, ... it is given).
MAX_ATTRIBUTES = 1000
