"""Bank statements → ``Transaction``: ISO 20022 camt.053 / camt.054 (and camt.052) XML, and
the bank's JSON feed with ISO 4217 numeric currency codes.

**camt**: every booked entry (``Ntry`` with status ``BOOK``) of every statement,
notification or report becomes one transaction; pending and informational entries are
skipped (the bank books them later under the same reference, and a pending one recorded
first would make the booked one a duplicate). Namespaces of any camt version are accepted
(elements are matched by local name). Per entry:

- ``event_id``: ``bank:`` + the entry's ``AcctSvcrRef``, else its ``NtryRef``, else the
  first transaction's ``AcctSvcrRef``, else ``h`` + a SHA-256 of the entry's XML (stable for
  the same entry in a re-sent file).
- status: a credit (``CRDT``) is money received, **captured**; a debit (``DBIT``) is money
  paid back out of the merchant account, **refunded**. A reversal (``RvslInd`` true) swaps
  the two (a reversed credit is money returned).
- amount: ``Amt`` with its ``Ccy`` attribute, exact; time: ``BookgDt`` (``DtTm``, or ``Dt`` at
  midnight UTC), else ``ValDt``.
- ``transaction_id``: ``EndToEndId`` (unless ``NOTPROVIDED``), else ``TxId``, else the event
  reference. Name and country: the debtor's for a credit, the creditor's for a debit.
  Description: the unstructured remittance lines, else ``AddtlNtryInf``.

An entry batching several transactions stays one transaction (its total). A file is read
whole before anything is returned: one bad entry refuses the file (``InvalidInputError``
naming the entry), nothing half-taken. A ``DOCTYPE`` is refused outright (ISO 20022 files
never have one; it is how entity expansion attacks start), and files must be UTF-8.

**JSON feed** (the same entries as JSON): ``{"entries": [{"entry_ref", "acct_svcr_ref",
"transaction_id", "booking_time", "value_date", "amount": "12.34", "currency": "978",
"credit_debit": "CRDT"|"DBIT", "status": "BOOK", "reversal": false, "counterparty": {"name",
"country"}, "remittance_info"}]}``. ``currency`` is the ISO 4217 numeric code (an alpha
code is accepted too); ``event_id`` is ``bank:`` + ``acct_svcr_ref``, else ``entry_ref``;
the same status, direction and reversal rules as camt apply.

A card number anywhere in an entry (a bank feed may carry one) is fingerprinted into the
card fields and scrubbed from every kept text.
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET

from sysmonstm.domains.payments import money
from sysmonstm.domains.payments.card import CardRef, find_pans, from_pan
from sysmonstm.domains.payments.model import Status, Transaction
from sysmonstm.domains.payments.payload import (
    clean,
    country,
    iso_ms,
    pan_in,
    required,
    text,
)
from sysmonstm.errors import InvalidInputError

PROCESSOR = "bank"
MAX_FILE = 20 * 1024 * 1024
_DOCTYPE = re.compile(r"<!(DOCTYPE|ENTITY)", re.IGNORECASE)
_CONTAINERS = ("Stmt", "Ntfctn", "Rpt")  # camt.053, camt.054, camt.052


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _find(node: ET.Element | None, *path: str) -> ET.Element | None:
    """The first element along ``path`` of local names (any namespace)."""
    for name in path:
        if node is None:
            return None
        node = next((c for c in node if _local(c.tag) == name), None)
    return node


def _all(node: ET.Element | None, name: str) -> list[ET.Element]:
    return [] if node is None else [c for c in node if _local(c.tag) == name]


def _text(node: ET.Element | None, *path: str) -> str:
    found = _find(node, *path)
    return (found.text or "").strip() if found is not None else ""


def parse_xml(data: bytes) -> ET.Element:
    """The root of a camt file; ``InvalidInputError`` for an unsafe or unreadable one."""
    if len(data) > MAX_FILE:
        raise InvalidInputError(f"statement is larger than {MAX_FILE} bytes")
    try:
        decoded = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInputError("statement is not UTF-8") from None
    if _DOCTYPE.search(decoded):
        raise InvalidInputError("statement has a DOCTYPE or ENTITY declaration; refused")
    try:
        return ET.fromstring(data)  # noqa: S314 - no DTD can be there (checked above)
    except ET.ParseError as exc:
        raise InvalidInputError(f"statement is not well-formed XML: {exc}") from None


def _entry_time(entry: ET.Element, where: str) -> int:
    for holder in ("BookgDt", "ValDt"):
        if stamp := _text(entry, holder, "DtTm"):
            return iso_ms(stamp, f"{where}.{holder}.DtTm")
        if day := _text(entry, holder, "Dt"):
            return iso_ms(day, f"{where}.{holder}.Dt")
    raise InvalidInputError(f"{where}: no BookgDt or ValDt")


def _party_name(party: ET.Element | None) -> str:
    return _text(party, "Nm") or _text(party, "Pty", "Nm")


def _party_country(party: ET.Element | None) -> str:
    code = _text(party, "PstlAdr", "Ctry") or _text(party, "Pty", "PstlAdr", "Ctry")
    return code.upper() if len(code) == 2 and code.isalpha() else ""


def _card(entry: ET.Element, key: bytes) -> CardRef | None:
    for value in entry.itertext():
        for pan in find_pans(value):
            return from_pan(pan, key)
    return None


def _entry(entry: ET.Element, where: str, account: str, key: bytes, source: str) -> Transaction:
    amount_node = _find(entry, "Amt")
    if amount_node is None or not amount_node.get("Ccy"):
        raise InvalidInputError(f"{where}: Amt with a Ccy attribute is missing")
    code = money.currency(amount_node.get("Ccy", ""))
    amount = money.parse_decimal(amount_node.text or "", code)
    direction = _text(entry, "CdtDbtInd")
    if direction not in ("CRDT", "DBIT"):
        raise InvalidInputError(f"{where}: CdtDbtInd is {direction!r}, not CRDT or DBIT")
    credit = (direction == "CRDT") != (_text(entry, "RvslInd").lower() == "true")
    tx = _find(entry, "NtryDtls", "TxDtls")
    ref = (
        _text(entry, "AcctSvcrRef")
        or _text(entry, "NtryRef")
        or _text(tx, "Refs", "AcctSvcrRef")
        or "h" + hashlib.sha256(ET.tostring(entry)).hexdigest()[:32]
    )
    end_to_end = _text(tx, "Refs", "EndToEndId")
    if end_to_end.upper() == "NOTPROVIDED":
        end_to_end = ""
    party = _find(tx, "RltdPties", "Dbtr" if direction == "CRDT" else "Cdtr")
    lines = [(u.text or "").strip() for u in _all(_find(tx, "RmtInf"), "Ustrd")]
    description = " ".join(line for line in lines if line) or _text(entry, "AddtlNtryInf")
    card = _card(entry, key)
    extras = {"direction": direction}
    if account:
        extras["account"] = clean(account, 64)
    return Transaction(
        event_id=f"{PROCESSOR}:{clean(ref, 255)}",
        processor=PROCESSOR,
        transaction_id=clean(end_to_end or _text(tx, "Refs", "TxId") or ref, 255),
        status=Status.CAPTURED if credit else Status.REFUNDED,
        amount_minor=amount,
        currency=code,
        time_ms=_entry_time(entry, where),
        card_fingerprint=card.fingerprint if card else "",
        card_bin=card.bin if card else "",
        card_last4=card.last4 if card else "",
        country=_party_country(party),
        customer_name=clean(_party_name(party)),
        description=clean(description),
        metadata=extras,
        source=source,
    )


def _booked(entry: ET.Element) -> bool:
    status = _text(entry, "Sts", "Cd") or _text(entry, "Sts")
    return status.upper() == "BOOK"


def from_camt(data: bytes, card_key: bytes, source: str = "") -> list[Transaction]:
    """The booked entries of a camt.052/053/054 file, in file order."""
    root = parse_xml(data)
    message = root[0] if _local(root.tag) == "Document" and len(root) else root
    containers = [c for name in _CONTAINERS for c in _all(message, name)]
    if not containers:
        raise InvalidInputError("not a camt.052/053/054 document (no Stmt, Ntfctn or Rpt)")
    out: list[Transaction] = []
    for i, container in enumerate(containers):
        account = _text(container, "Acct", "Id", "IBAN") or _text(
            container, "Acct", "Id", "Othr", "Id"
        )
        for j, entry in enumerate(_all(container, "Ntry")):
            if _booked(entry):
                where = f"{_local(container.tag)}[{i}].Ntry[{j}]"
                out.append(_entry(entry, where, account, card_key, source))
    return out


def _feed_item(item: object, where: str, key: bytes, source: str) -> Transaction | None:
    if not isinstance(item, dict):
        raise InvalidInputError(f"{where} is not an object")
    status = text(item, "status") or "BOOK"
    if status.upper() != "BOOK":
        return None
    raw_code = required(item, "currency")
    code = money.from_numeric(raw_code) if raw_code.isdigit() else money.currency(raw_code)
    amount_value = item.get("amount")
    if not isinstance(amount_value, str):
        raise InvalidInputError(f'{where}.amount must be a decimal string such as "12.34"')
    direction = required(item, "credit_debit").upper()
    if direction not in ("CRDT", "DBIT"):
        raise InvalidInputError(f"{where}.credit_debit is {direction!r}, not CRDT or DBIT")
    credit = (direction == "CRDT") != (item.get("reversal") is True)
    ref = text(item, "acct_svcr_ref", limit=255) or required(item, "entry_ref")
    when = text(item, "booking_time") or required(item, "value_date")
    card = pan_in(item, key)
    return Transaction(
        event_id=f"{PROCESSOR}:{ref}",
        processor=PROCESSOR,
        transaction_id=text(item, "transaction_id", limit=255) or ref,
        status=Status.CAPTURED if credit else Status.REFUNDED,
        amount_minor=money.parse_decimal(amount_value, code),
        currency=code,
        time_ms=iso_ms(when, f"{where}.booking_time"),
        card_fingerprint=card.fingerprint if card else "",
        card_bin=card.bin if card else "",
        card_last4=card.last4 if card else "",
        country=country(item, "counterparty", "country"),
        customer_name=text(item, "counterparty", "name"),
        description=text(item, "remittance_info"),
        metadata={"direction": direction},
        source=source,
    )


def from_feed(body: object, card_key: bytes, source: str = "") -> list[Transaction]:
    """The booked entries of one JSON feed delivery, all or none."""
    items = body.get("entries") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise InvalidInputError("entries must be a list")
    out = [_feed_item(item, f"entries[{i}]", card_key, source) for i, item in enumerate(items)]
    return [tx for tx in out if tx is not None]
