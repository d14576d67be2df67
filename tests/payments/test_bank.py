"""Bank statements: camt.053/054 entries and the JSON feed become transactions; bad files are
refused whole; card numbers never survive."""

from __future__ import annotations

import json

import pytest

from sysmonstm.domains.payments import bank_adapter, card
from sysmonstm.domains.payments.model import Status
from sysmonstm.errors import InvalidInputError

KEY = b"b" * 32
PAN = "5555555555554444"

CAMT053 = """<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">
 <BkToCstmrStmt><GrpHdr><MsgId>S1</MsgId><CreDtTm>2024-05-02T06:00:00Z</CreDtTm></GrpHdr>
  <Stmt><Id>ST-1</Id><Acct><Id><IBAN>DE89370400440532013000</IBAN></Id></Acct>
   <Ntry><NtryRef>N1</NtryRef><Amt Ccy="EUR">1234.50</Amt><CdtDbtInd>CRDT</CdtDbtInd>
    <Sts><Cd>BOOK</Cd></Sts><BookgDt><Dt>2024-05-01</Dt></BookgDt><ValDt><Dt>2024-05-01</Dt></ValDt>
    <AcctSvcrRef>ASR-100</AcctSvcrRef>
    <NtryDtls><TxDtls><Refs><EndToEndId>E2E-7</EndToEndId></Refs>
     <RltdPties><Dbtr><Pty><Nm>Jane
       Doe</Nm><PstlAdr><Ctry>fr</Ctry></PstlAdr></Pty></Dbtr></RltdPties>
     <RmtInf><Ustrd>Invoice 42</Ustrd><Ustrd>card {pan}</Ustrd></RmtInf></TxDtls></NtryDtls>
   </Ntry>
   <Ntry><NtryRef>N2</NtryRef><Amt Ccy="JPY">5000</Amt><CdtDbtInd>DBIT</CdtDbtInd>
    <Sts>BOOK</Sts><BookgDt><DtTm>2024-05-01T12:30:00+02:00</DtTm></BookgDt>
    <NtryDtls><TxDtls><Refs><EndToEndId>NOTPROVIDED</EndToEndId><TxId>TX-9</TxId></Refs>
     <RltdPties><Cdtr><Nm>Shop Ltd</Nm></Cdtr></RltdPties></TxDtls></NtryDtls>
   </Ntry>
   <Ntry><Amt Ccy="EUR">1.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>PDNG</Cd></Sts>
    <BookgDt><Dt>2024-05-01</Dt></BookgDt></Ntry>
   <Ntry><Amt Ccy="KWD">1.005</Amt><CdtDbtInd>CRDT</CdtDbtInd><RvslInd>true</RvslInd>
    <Sts><Cd>BOOK</Cd></Sts><ValDt><Dt>2024-05-03</Dt></ValDt></Ntry>
  </Stmt>
 </BkToCstmrStmt>
</Document>
""".replace("{pan}", PAN).encode()

CAMT054 = b"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.02">
 <BkToCstmrDbtCdtNtfctn><Ntfctn><Id>NT-1</Id>
  <Ntry><Amt Ccy="USD">10.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>
   <BookgDt><Dt>2024-05-04</Dt></BookgDt><AcctSvcrRef>N54-1</AcctSvcrRef></Ntry>
 </Ntfctn></BkToCstmrDbtCdtNtfctn>
</Document>
"""


def test_camt053_booked_entries_become_transactions() -> None:
    """Booked entries only; credit → captured, debit → refunded, a reversed credit → refunded;
    references, dates, parties and amounts as specified; the PAN fingerprinted, not kept."""
    txs = bank_adapter.from_camt(CAMT053, KEY, "bank-1")
    assert [t.event_id for t in txs][:2] == ["bank:ASR-100", "bank:N2"]
    first, second, third = txs
    assert (first.status, first.amount_minor, first.currency) == (Status.CAPTURED, 123450, "EUR")
    assert first.transaction_id == "E2E-7"
    assert first.time_ms == 1714521600000
    assert first.customer_name == "Jane Doe"
    assert first.country == "FR"
    assert first.description == "Invoice 42 card [card ****4444]"
    assert first.card_fingerprint == card.from_pan(PAN, KEY).fingerprint
    assert (first.card_bin, first.card_last4) == ("55555555", "4444")
    assert first.metadata == {"direction": "CRDT", "account": "DE89370400440532013000"}
    assert (second.status, second.amount_minor, second.currency) == (Status.REFUNDED, 5000, "JPY")
    assert second.transaction_id == "TX-9"
    assert second.customer_name == "Shop Ltd"
    assert second.time_ms == 1714559400000
    assert (third.status, third.amount_minor, third.currency) == (Status.REFUNDED, 1005, "KWD")
    assert third.event_id.startswith("bank:h")
    assert len(third.event_id) == len("bank:h") + 32
    assert all(PAN not in repr(t) for t in txs)
    assert bank_adapter.from_camt(CAMT053, KEY)[2].event_id == third.event_id  # stable


def test_camt054_notification() -> None:
    """A camt.054 notification's entries are read the same way."""
    (tx,) = bank_adapter.from_camt(CAMT054, KEY)
    assert (tx.event_id, tx.amount_minor, tx.currency) == ("bank:N54-1", 1000, "USD")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (CAMT053.replace(b'Ccy="JPY">5000', b'Ccy="JPY">50.5'), "more than 0 decimals"),
        (CAMT053.replace(b'Ccy="JPY"', b'Ccy="XXY"'), "unknown currency"),
        (CAMT053.replace(b"<CdtDbtInd>DBIT", b"<CdtDbtInd>DEBT"), "Stmt\\[0\\].Ntry\\[1\\]"),
        (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><Document/>', "DOCTYPE"),
        (b"<Document><BkToCstmrStmt>", "not well-formed"),
        (b"<Document><Other/></Document>", "not a camt"),
        ("<Document/>".encode("utf-16"), "not UTF-8"),
    ],
)
def test_bad_statements_are_refused_whole(data: bytes, reason: str) -> None:
    """One bad entry, an entity declaration, broken XML or another document: refused whole."""
    with pytest.raises(InvalidInputError, match=reason):
        bank_adapter.from_camt(data, KEY)


def feed_entry(**changes: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "entry_ref": "BK1",
        "acct_svcr_ref": "ASR-1",
        "transaction_id": "T-1",
        "booking_time": "2024-05-01T10:00:00Z",
        "amount": "19.99",
        "currency": "978",
        "credit_debit": "CRDT",
        "status": "BOOK",
        "counterparty": {"name": "Jane Doe", "country": "DE"},
        "remittance_info": "Invoice 7",
    }
    entry.update(changes)
    return entry


def test_json_feed_numeric_currencies() -> None:
    """ISO numeric codes become alpha ones; pending entries are skipped; a PAN anywhere is
    fingerprinted and not kept."""
    body = {"entries": [
        feed_entry(),
        feed_entry(acct_svcr_ref="", entry_ref="BK2", currency="392", amount="700",
                   credit_debit="DBIT", remittance_info=f"refund card {PAN}"),
        feed_entry(acct_svcr_ref="ASR-3", status="PDNG"),
    ]}  # fmt: skip
    first, second = bank_adapter.from_feed(body, KEY, "bank-1")
    assert (first.event_id, first.amount_minor, first.currency) == ("bank:ASR-1", 1999, "EUR")
    assert first.status is Status.CAPTURED
    assert first.customer_name == "Jane Doe"
    assert (second.event_id, second.currency, second.amount_minor) == ("bank:BK2", "JPY", 700)
    assert second.status is Status.REFUNDED
    assert second.card_last4 == "4444"
    assert PAN not in json.dumps([repr(first), repr(second)])


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        (feed_entry(currency="999"), "unknown ISO 4217 numeric"),
        (feed_entry(amount=19.99), "decimal string"),
        (feed_entry(credit_debit="X"), "CRDT or DBIT"),
        (feed_entry(booking_time="yesterday"), "not an ISO 8601 time"),
        (feed_entry(acct_svcr_ref="", entry_ref=""), "entry_ref"),
    ],
)
def test_bad_feed_entries_are_refused(entry: dict[str, object], reason: str) -> None:
    """A bad entry refuses the whole delivery, naming the field."""
    with pytest.raises(InvalidInputError, match=reason):
        bank_adapter.from_feed({"entries": [feed_entry(acct_svcr_ref="OK"), entry]}, KEY)
