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
"""

from __future__ import annotations

import zlib

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


def pack(data: bytes, codec: int = CURRENT, *, context: bytes = b"") -> bytes:
    """`data` as stored under `codec`; `context` (bytes the reader will have) primes it."""
    if codec == RAW:
        return data
    packer = zlib.compressobj(
        9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, _dictionary(codec) + context
    )
    return packer.compress(data) + packer.flush()


def unpack(stored: bytes, codec: int, *, context: bytes = b"") -> bytes:
    """The bytes `pack(data, codec, context=context)` was given."""
    if codec == RAW:
        return stored
    unpacker = zlib.decompressobj(-15, _dictionary(codec) + context)
    try:
        return unpacker.decompress(stored) + unpacker.flush()
    except zlib.error as exc:
        raise PackedDataDamaged(f"packed data does not unpack: {exc}") from exc


def _dictionary(codec: int) -> bytes:
    try:
        return _DICTIONARIES[codec]
    except KeyError:
        raise ValueError(f"unknown packing codec {codec}: written by a newer pos-agent") from None
