"""The sizes every message and excerpt respects, each with one name."""

# Room left in each Kafka message for its key, headers and the batch's overhead.
MESSAGE_HEADROOM = 1024
# How much of an unusable row (or of an answer no parser takes) travels on, for job_rejects.
EXCERPT_BYTES = 4096
# A rejected row larger than this is kept as an excerpt, so a reject is always a small message.
REJECT_ROW_BYTES = 64 * 1024
