"""What both ends of an ingest stream agree on beyond the protobuf contract."""

#: trailing metadata key naming the sequence of a refused batch
REJECTED_SEQ = "sysmonstm-rejected-seq"
