"""Compact storage of a document's request and provider payload (zlib with a preset dictionary).

A receipt's two JSON texts are small (1-5 KB) and made mostly of the same keys and values on
every receipt, so plain zlib saves little on each alone. A preset dictionary (`zdict`) made of
that vocabulary lets even a one-line receipt compress to a few hundred bytes; the request is
then compressed with the payload appended to the dictionary (`context`), since its descriptions
and amounts are all in the payload. Raw deflate (no zlib header or checksum: the journal's
`payload_sha256` is the check). The codec is recorded per row (`documents.packed`): 0 = the
texts as they were (rows of schema 1), 1 = raw deflate with `_DICTIONARY_1`. A dictionary is
never changed once released: rows packed with it must still unpack, so a better one would be
codec 2.

Codec 1 may be extended by a dictionary learned from the register's own receipts (schema 4,
`dictionaries.py`): its bytes go between the built-in dictionary and the context, so what every
payload of this register repeats (its issuer block, series, menu) is found there. `Packing`
says which one a row uses.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from offline_store.errors import PackedDataDamaged

RAW = 0
ZLIB_DICT_1 = 1
CURRENT = ZLIB_DICT_1

# The provider payload's and the stored request's vocabulary, most frequent last (zlib finds
# matches nearer the end of the dictionary with shorter distances).
_DICTIONARY_1 = (
    '"customer":null,"connected_marks":[],"correlated_marks":[],"delivery":{"print":null,'
    '"email":false,"mobile":false},"type":"11.1","exemption_cause":null,"unit":1,"code":null,'
    '"kind":"goods"},{"description":"","quantity":"1","unit_price":"","vat_category":2,'
    '"payments":[{"method":3,"amount":"","tip":"0","terminal_id":null,"transaction_id":null,'
    '"signature_id":null}],{"method":7,"terminal_id":"","transaction_id":"","request_id":"",'
    '"lines":[{"IsDelayedCode":0,"IAPRSignPolicy":2,"Currency":"Euro","CurrencyCode":"EUR",'
    '"InvoiceType":"Retail Sales Receipt","InvoiceTypeCode":"11.1","SpecialInvoiceCategory":0,'
    '"DocumentTypeCode":"INVOICE","IsDeliveryNote":false,"Series":"","Number":"",'
    '"DateIssued":"20","CorrelatedInvoices":[],"multipleConnectedMarks":[],"Issuer":{'
    '"RegisteredName":"","BrandName":"","Vat":"EL","TaxOffice":"Δ.Ο.Υ. ","Phones":[""],'
    '"Address":{"CountryCode":"GR","City":"","Street":"","Number":"","Postal":""},'
    '"BranchCode":0},"CounterParty":{"DistributionDetails":{"InternalDocumentId":"11.1_'
    '"PaymentDetails":{"PaymentMethods":[{"PaymentMethodType":"POS / e-POS",'
    '"PaymentMethodTypeCode":7,"Amount":,"tipAmount":0,"terminalId":"","transactionId":""}]},'
    '{"PaymentMethodType":"Cash","PaymentMethodTypeCode":3,"Amount":,"tipAmount":0}]},'
    '"AdditionalDetails":{"TransmissionMethod":"A","AvoidEmailGrouping":false,'
    '"SendAsPdf":false,"AccountingDepartmentEmails":[]},"Details":[{"LineNo":1,"Code":"",'
    '"Descriptions":[""],"MeasurementUnitCode":1,"MeasurementUnit":"ΤΕΜ","Quantity":1,'
    '"UnitPrice":,"NetTotal":,"VatCategory":"24%","VatCategoryCode":1,"VATTotal":,"Total":,'
    '"IsInformative":false,"IsHidden":false,"RecordTypeCode":0,"IncomeClassification":{'
    '"ClassificationTypeCode":"E3_561_003","ClassificationCategoryCode":"category1_1"}},'
    '{"LineNo":2,"Code":"","Descriptions":[""],"MeasurementUnitCode":1,"MeasurementUnit":"ΤΕΜ",'
    '"Quantity":1,"UnitPrice":,"NetTotal":,"VatCategory":"13%","VatCategoryCode":2,"VATTotal":,'
    '"Total":,"IsInformative":false,"IsHidden":false,"RecordTypeCode":0,"IncomeClassification":'
    '{"ClassificationTypeCode":"E3_561_003","ClassificationCategoryCode":"category1_1"}}],'
    '"Summaries":{"totalAllowances":0.00,"TotalNetAmount":,"TotalVATAmount":,"TotalGrossValue":'
    '},"VatAnalysis":[{"VatCategoryCode":1,"Percentage":24,"VatAmount":,"UnderlyingValue":},'
    '{"VatCategoryCode":2,"Percentage":13,"VatAmount":,"UnderlyingValue":}]}'
).encode()

_DICTIONARIES = {ZLIB_DICT_1: _DICTIONARY_1}
# Deflate refers back at most 32 KiB: a longer dictionary is cut to its end, the same way for
# the packer and the unpacker.
_WINDOW = 1 << 15


@dataclass(frozen=True)
class Packing:
    """How a row is packed: the codec and, for codec 1, the learned dictionary appended to the
    built-in one (`dictionary_id` is `documents.pack_dict`, `learned` its bytes)."""

    codec: int = CURRENT
    dictionary_id: int | None = None
    learned: bytes = b""


BUILT_IN = Packing()
UNPACKED = Packing(RAW)


def pack(data: bytes, packing: Packing = BUILT_IN, *, context: bytes = b"") -> bytes:
    """`data` as stored under `packing`; `context` (bytes the reader will have) primes it."""
    if packing.codec == RAW:
        return data
    packer = zlib.compressobj(
        9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, _dictionary(packing, context)
    )
    return packer.compress(data) + packer.flush()


def unpack(stored: bytes, packing: Packing, *, context: bytes = b"") -> bytes:
    """The bytes `pack(data, packing, context=context)` was given."""
    if packing.codec == RAW:
        return stored
    unpacker = zlib.decompressobj(-15, _dictionary(packing, context))
    try:
        return unpacker.decompress(stored) + unpacker.flush()
    except zlib.error as exc:
        raise PackedDataDamaged(f"packed data does not unpack: {exc}") from exc


# The answers the local API remembers for a replay (`api_requests`), most of them a card
# signature's: its keys and fixed values.
ANSWERS_1 = 2
_ANSWERS_DICTIONARY_1 = (
    b'{"receipt_id":,"mark":null,"payment_mark":,"transaction_id":"TX","amount":"",'
    b'"kick_id":,"reason":"manual","state":"queued","job_id":,"copy":true,'
    b'"provider_id":"999","nsp_code":"CommonWeb","signature_duration":"H_24",'
    b'"signature_duration":"M_15","mode":"standard","mode":"offline","expires_at":"20",'
    b'{"signature_id":,"receipt_id":,"type":"11.1","type":"8.4","series":"","number":,'
    b'"issued_at":"20","uid":"","mark":null,"input":"","signature":"MEUCI",'
    b'"fields":{"uid":"","mark":null,"timestamp":"20","amounts_cents":[],"terminal_id":""},'
)
_DICTIONARIES[ANSWERS_1] = _ANSWERS_DICTIONARY_1


def pack_answer(text: str, *, context: bytes = b"") -> bytes:
    """A remembered answer, its codec in the first byte (so a later codec needs no column);
    `context`: bytes the reader will have (a sign answer's signature row)."""
    return bytes([ANSWERS_1]) + pack(text.encode("utf-8"), Packing(ANSWERS_1), context=context)


def unpack_answer(stored: bytes, *, context: bytes = b"") -> str:
    """The text `pack_answer` was given (with the same `context`)."""
    if not stored:
        raise PackedDataDamaged("a packed answer is empty")
    try:
        return unpack(stored[1:], Packing(stored[0]), context=context).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PackedDataDamaged("a packed answer does not unpack to text") from exc


def _dictionary(packing: Packing, context: bytes) -> bytes:
    try:
        built_in = _DICTIONARIES[packing.codec]
    except KeyError:
        raise ValueError(
            f"unknown packing codec {packing.codec}: written by a newer pos-agent"
        ) from None
    return (built_in + packing.learned + context)[-_WINDOW:]
