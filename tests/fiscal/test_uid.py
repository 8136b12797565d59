from datetime import date

from agent.fiscal.uid import bare_vat, document_uid, prefixed_vat, uid_source
from agent.fiscal.vat_number import is_valid_afm


def test_uid_source_format_strips_el_prefix():
    assert uid_source("EL555777003", date(2026, 1, 1), 0, "1.1", "IZ", 7) == (
        "555777003-2026-01-01-0-1.1-IZ-7"
    )


def test_uid_is_uppercase_sha1_of_iso_8859_7():
    import hashlib

    expected = hashlib.sha1("154697391-2024-07-17-0-11.1-ΑΛΠ-1".encode("iso-8859-7")).hexdigest()
    assert document_uid("154697391", date(2024, 7, 17), 0, "11.1", "ΑΛΠ", 1) == expected.upper()


def test_greek_series_hashes_differently_in_utf8_and_iso_8859_7():
    # Guards the encoding: the same text in UTF-8 would give another UID.
    import hashlib

    utf8 = hashlib.sha1("154697391-2024-07-17-0-11.1-ΑΛΠ-1".encode()).hexdigest().upper()
    assert document_uid("154697391", date(2024, 7, 17), 0, "11.1", "ΑΛΠ", 1) != utf8


def test_fixed_vector_with_greek_series():
    assert (
        document_uid("EL154697391", date(2024, 7, 17), 0, "11.1", "ΑΛΠ", 1)
        == "76283B937D6D140D7087DBA126B1B122164105D1"
    )


def test_vat_prefix_helpers():
    assert bare_vat("el154697391") == "154697391"
    assert prefixed_vat("154697391") == "EL154697391"


def test_afm_is_ascii_digits_only():
    """`094019245` in Arabic-Indic digits passes the check digit but is not an ΑΦΜ AADE takes."""
    assert is_valid_afm("094019245")
    assert not is_valid_afm("094019245".translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")))
    assert not is_valid_afm("094019245\n")
