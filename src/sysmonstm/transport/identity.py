"""Source identity rules shared by every domain's ingest."""

from __future__ import annotations

import re

#: a machine id: what /etc/machine-id, a UUID or a host name look like, and nothing that
#: could break a topic, a key or a path (1..128 of [A-Za-z0-9._:-], starting alphanumeric)
MACHINE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
MACHINE_ID_RULE = "1..128 of [A-Za-z0-9._:-], starting alphanumeric"
MAX_HOSTNAME = 253
