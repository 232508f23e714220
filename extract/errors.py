"""Typed errors of the extract stage.

Every error names the record or batch it concerns (``ref``: a file and message number, a
table and key, an MLLP control id) and says what is wrong with it, never what it holds:
messages carry no names, ID numbers, phone numbers, addresses or birth dates, so they can
be logged, shown to operators and stored in the quarantine table.
"""

from __future__ import annotations


class SourceError(Exception):
    """A source could not be read as expected.

    Parameters
    ----------
    message : str
        What is wrong, without identifying values.
    ref : str
        The record or batch it concerns (``adt_20250105.hl7#msg12``, ``registrations:R1``).
    """

    def __init__(self, message: str, ref: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.ref = ref

    def __str__(self) -> str:
        return f"{self.ref}: {self.message}" if self.ref else self.message


class ParseError(SourceError):
    """One record could not be converted to a raw visit record.

    Parameters
    ----------
    message : str
        The precise reason (``missing PV1-19 visit number``), without identifying values.
    row_ref : str
        The record it concerns, as it appears in ``rejected.row_ref``.
    code : str
        HL7 table 0357 error code for acknowledgements: ``100`` segment sequence (a
        required segment is missing), ``101`` required field missing, ``102`` data type
        error, ``103`` table value not found, ``207`` application internal error.
    """

    def __init__(self, message: str, row_ref: str, code: str = "102") -> None:
        super().__init__(message, row_ref)
        self.row_ref = row_ref
        self.code = code

    @property
    def reason(self) -> str:
        """The reason alone (what ``rejected.reason`` holds)."""
        return self.message


class UnsupportedMessageError(ParseError):
    """A record that cannot be processed at all: not HL7, no MSH, bad delimiters, a
    message type, trigger event or version this reader does not handle.

    MLLP answers these with ``AR`` (application reject) rather than ``AE``. ``code`` is
    ``200`` unsupported message type, ``201`` unsupported event, ``203`` unsupported
    version, ``102`` otherwise.
    """


class SchemaError(SourceError):
    """A table or frame does not have the columns or types a step needs."""
