"""Receive HL7 v2 ADT messages over MLLP and acknowledge each one.

MLLP (Minimal Lower Layer Protocol, HL7 v2 Appendix C) frames every message as
``<VT> message <FS><CR>`` (``\\x0b`` … ``\\x1c\\r``) on a TCP connection; the receiver
answers every frame with an acknowledgement (ACK) in a frame of its own.

The listener is an asyncio server run by :func:`serve_mllp` in the calling thread (one
event loop, any number of connections). Parsing and the caller's ``handler`` run in
*one* worker thread, so the handler is never called concurrently and may block (buffer,
write a batch) without stalling the network side. A message is acknowledged only after
the handler returned:

* ``AA`` (accept): parsed, and ``handler(record)`` returned;
* ``AE`` (error): an ADT message whose content could not be read (missing PV1-19, bad
  timestamp …), or the handler raised; MSA-3 and ERR-8 carry the reason;
* ``AR`` (reject): a frame that cannot be processed at all (not HL7, no MSH, bad
  delimiters, not ADT, an unsupported trigger event or HL7 version).

Bytes outside frames (line noise, a peer's stray newlines) are discarded and counted; a
frame cut off by a disconnect is dropped (the sender never got an ACK and resends it).
Frames longer than ``max_frame`` bytes are dropped. Logs are structured events with no
identifiers: control ids, reasons and counts only (the peer's address is logged; it
identifies a system, not a patient).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import socket
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from datetime import datetime
from functools import partial
from types import TracebackType
from zoneinfo import ZoneInfo

from extract.errors import ParseError, UnsupportedMessageError
from extract.hl7v2 import (
    Delimiters,
    MessageHeader,
    escape_text,
    parse_message,
    read_header,
)

log = logging.getLogger("sentinel.extract.mllp")

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c\r"
MAX_FRAME = 4 * 1024 * 1024
SHANGHAI = ZoneInfo("Asia/Shanghai")
ERROR_NAMES: dict[str, str] = {
    "100": "Segment sequence error",
    "101": "Required field missing",
    "102": "Data type error",
    "103": "Table value not found",
    "200": "Unsupported message type",
    "201": "Unsupported event code",
    "203": "Unsupported version id",
    "207": "Application internal error",
}
_SAFE_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")
_UNDECODED = re.compile(r"[\udc80-\udcff]")
HANDLER_FAILED = "application error: the record could not be stored"

Handler = Callable[[dict[str, object]], None]


def _event(event: str, **fields: object) -> None:
    log.info(event, extra={"fields": fields})


class MllpFramer:
    """Cuts a byte stream into MLLP frames, across reads and past garbage.

    Parameters
    ----------
    max_frame : int
        Longest frame kept, in bytes; a longer one is dropped (and counted as discarded).
    """

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self.max_frame = max_frame
        self.discarded = 0
        self._buf = bytearray()
        self._scanned = 0  # bytes of the open frame already searched for END_BLOCK

    @property
    def pending(self) -> int:
        """Bytes of an open (started, unfinished) frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the frames they complete (without framing bytes)."""
        buf = self._buf
        buf += data
        frames: list[bytes] = []
        while buf:
            start = buf.find(START_BLOCK)
            if start < 0:
                self.discarded += len(buf)
                buf.clear()
                break
            if start:
                self.discarded += start
                del buf[:start]
                self._scanned = 0
            end = buf.find(END_BLOCK, max(1, self._scanned - 1))
            if end < 0:
                self._scanned = len(buf)
                if len(buf) > self.max_frame + 1:
                    self.discarded += len(buf)
                    buf.clear()
                    self._scanned = 0
                break
            # a second start block inside: the sender gave up the first frame and restarted
            restart = buf.rfind(START_BLOCK, 0, end)
            self.discarded += restart
            if end - restart - 1 <= self.max_frame:
                frames.append(bytes(buf[restart + 1 : end]))
            else:
                self.discarded += end - restart + 2
            del buf[: end + len(END_BLOCK)]
            self._scanned = 0
        return frames


def frame(message: bytes) -> bytes:
    """``message`` wrapped in MLLP start and end blocks."""
    return START_BLOCK + message + END_BLOCK


def decode_frame(data: bytes) -> tuple[str, str]:
    """(text, encoding) of a frame.

    The character set declared in MSH-18 (``UNICODE UTF-8``, ``GB18030``) decides;
    without one, UTF-8, else GB18030. Undecodable bytes are left as lone surrogates (the
    message is then answered ``AE``): a declared-UTF-8 message with broken bytes is not
    re-read as GB18030, which would usually "succeed" with wrong characters.
    """
    first = data[: min(i for i in (data.find(b"\r"), data.find(b"\n"), len(data)) if i >= 0)]
    field = first.split(first[3:4] or b"|")[17:18] if first.startswith(b"MSH") else []
    charset = field[0].replace(b" ", b"").upper() if field else b""
    if charset.startswith(b"GB18030"):
        return data.decode("gb18030", "surrogateescape"), "gb18030"
    if charset.endswith(b"UTF-8"):
        return data.decode("utf-8", "surrogateescape"), "utf-8"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030"), "gb18030"
    except UnicodeDecodeError:
        return data.decode("utf-8", "surrogateescape"), "utf-8"


def build_ack(
    header: MessageHeader | None,
    code: str,
    reason: str = "",
    error_code: str = "",
    now: datetime | None = None,
) -> str:
    """An ACK for a message: MSH (sender and receiver swapped), MSA, and ERR on errors.

    Parameters
    ----------
    header : MessageHeader or None
        The message's MSH; None when it had none (the ACK then uses ``|^~\\&``, HL7
        2.5.1 and empty application fields).
    code : {"AA", "AE", "AR"}
        MSA-1 acknowledgement code.
    reason : str
        Text for MSA-3 and ERR-8 (escaped here); no identifiers.
    error_code : str
        HL7 table 0357 code for ERR-3 (``101`` required field missing …).
    now : datetime, optional
        ACK time (MSH-7), aware; default the current Shanghai time.

    Returns
    -------
    str
        The ACK, segments ended by ``\\r``.
    """
    d = header.delimiters if header is not None else Delimiters()

    def h(number: int) -> str:
        return header.field(number) if header is not None else ""

    version = h(12).split(d.component, 1)[0]
    trigger = ([*h(9).split(d.component), ""])[1]
    stamp = (now or datetime.now(SHANGHAI)).strftime("%Y%m%d%H%M%S%z")
    encoding = d.component + d.repetition + d.escape + d.subcomponent
    msh = [
        "MSH", encoding, h(5), h(6), h(3), h(4), stamp, "",
        d.component.join(("ACK", trigger if trigger.isalnum() else "", "ACK")),
        uuid.uuid4().hex[:20].upper(), h(11) or "P",
        h(12) if version.startswith("2.") else "2.5.1",
    ]  # fmt: skip
    text = escape_text(reason, d)
    msa = ["MSA", code, h(10), text] if text else ["MSA", code, h(10)]
    segments = [d.field.join(msh), d.field.join(msa)]
    if code != "AA":
        err = d.component.join((error_code, ERROR_NAMES.get(error_code, ""), "HL70357"))
        segments.append(d.field.join(["ERR", "", "", err, "E", "", "", "", text]))
    return "\r".join(segments) + "\r"


def acknowledge(data: bytes, handler: Handler, *, source: str = "hl7", number: int = 0) -> bytes:
    """Parse one framed message, pass its record to ``handler``, return the encoded ACK.

    Parameters
    ----------
    data : bytes
        The frame's content (without MLLP framing).
    handler : callable
        Called with the raw visit record (a dict of
        :data:`transform.records.RAW_COLUMNS`) of a message that parsed.
    source : str
        Configured source name for the records.
    number : int
        Frame number, the reference of a message without a control id.

    Returns
    -------
    bytes
        The ACK in the message's encoding (UTF-8 or GB18030).
    """
    text, encoding = decode_frame(data)
    ref = f"mllp:frame{number}"
    try:
        header = read_header(text, ref)
    except UnsupportedMessageError as err:
        _event("mllp_rejected", ref=ref, ack="AR", reason=err.reason)
        return build_ack(None, "AR", err.reason, err.code).encode(encoding, "replace")
    if _SAFE_ID.fullmatch(header.control_id):
        ref = f"mllp:{header.control_id}"
    code, reason, error_code = "AA", "", ""
    try:
        if _UNDECODED.search(text):
            raise ParseError("undecodable bytes: neither UTF-8 nor GB18030", ref, "102")
        record = parse_message(text, ref, source=source)
    except UnsupportedMessageError as err:
        code, reason, error_code = "AR", err.reason, err.code
    except ParseError as err:
        code, reason, error_code = "AE", err.reason, err.code
    else:
        try:
            handler(record)
        except Exception as exc:  # the sender must hear of any failure: AE, logged
            code, reason, error_code = "AE", HANDLER_FAILED, "207"
            log.error(
                "mllp_handler_failed",
                extra={"fields": {"ref": ref, "error": type(exc).__name__}},
            )
    if code != "AA":
        _event("mllp_rejected", ref=ref, ack=code, reason=reason)
    return build_ack(header, code, reason, error_code).encode(encoding, "replace")


async def _serve(
    host: str,
    port: int,
    handler: Handler,
    ready: threading.Event | None,
    stop: threading.Event | None,
    on_bound: Callable[[int], None] | None,
    source: str,
    max_frame: int,
) -> None:
    loop = asyncio.get_running_loop()
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mllp-handler")
    tasks: set[asyncio.Task[None]] = set()
    connections = itertools.count(1)
    frames = itertools.count(1)

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            tasks.add(task)
        conn = next(connections)
        peer = writer.get_extra_info("peername")
        _event("mllp_connected", connection=conn, peer=peer)
        framer = MllpFramer(max_frame)
        messages = 0
        try:
            while chunk := await reader.read(65536):
                for data in framer.feed(chunk):
                    job = partial(acknowledge, data, handler, source=source, number=next(frames))
                    ack = await loop.run_in_executor(worker, job)
                    writer.write(frame(ack))
                    await writer.drain()
                    messages += 1
        except (ConnectionError, TimeoutError) as exc:
            _event("mllp_connection_lost", connection=conn, error=type(exc).__name__)
        finally:
            _event(
                "mllp_disconnected", connection=conn, messages=messages,
                discarded_bytes=framer.discarded, unfinished_frame_bytes=framer.pending,
            )  # fmt: skip
            writer.close()
            with suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()
            if task is not None:
                tasks.discard(task)

    server = await asyncio.start_server(connection, host, port)
    bound = server.sockets[0].getsockname()[1]
    _event("mllp_listening", host=host, port=bound)
    if on_bound is not None:
        on_bound(bound)
    if ready is not None:
        ready.set()
    try:
        while stop is None or not stop.is_set():
            await asyncio.sleep(0.05)
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()
        worker.shutdown(wait=True)
        _event("mllp_stopped", host=host, port=bound)


def serve_mllp(
    host: str,
    port: int,
    handler: Handler,
    *,
    ready: threading.Event | None = None,
    stop: threading.Event | None = None,
    on_bound: Callable[[int], None] | None = None,
    source: str = "hl7",
    max_frame: int = MAX_FRAME,
) -> None:
    """Listen for MLLP connections and acknowledge every message; block until ``stop``.

    Parameters
    ----------
    host, port : str, int
        Address to listen on; port 0 picks a free port (reported to ``on_bound``).
    handler : callable
        ``handler(record)`` for each message that parsed; a raw visit record (dict of
        :data:`transform.records.RAW_COLUMNS`). Called from one worker thread, one
        record at a time; the message is acknowledged ``AA`` when it returns and ``AE``
        when it raises.
    ready : threading.Event, optional
        Set once the server listens.
    stop : threading.Event, optional
        Set it to stop: the listener closes, open connections are closed, a handler call
        in progress finishes. Without it the server runs until the thread is interrupted.
    on_bound : callable, optional
        Called with the port listened on, before ``ready`` is set.
    source : str
        Configured source name written into the records.
    max_frame : int
        Longest message accepted, in bytes.

    Raises
    ------
    OSError
        If the address cannot be bound.
    """
    asyncio.run(_serve(host, port, handler, ready, stop, on_bound, source, max_frame))


class MllpClient:
    """A blocking MLLP client for tests and tools.

    Parameters
    ----------
    host, port : str, int
        The listener's address.
    timeout : float
        Seconds to wait for connecting and for each ACK.

    Examples
    --------
    >>> with MllpClient("127.0.0.1", 2575) as client:  # doctest: +SKIP
    ...     ack = client.send(message)
    """

    def __init__(self, host: str, port: int, *, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self._framer = MllpFramer()
        self._acks: list[bytes] = []

    def send_bytes(self, data: bytes) -> None:
        """Send raw bytes as they are (partial frames, garbage): for tests."""
        self.sock.sendall(data)

    def read_ack(self) -> str:
        """The next ACK received, decoded (UTF-8, else GB18030)."""
        while not self._acks:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed before an ACK arrived")
            self._acks.extend(self._framer.feed(chunk))
        return decode_frame(self._acks.pop(0))[0]

    def send(self, message: str | bytes, encoding: str = "utf-8") -> str:
        """Send one message in a frame and return its ACK text."""
        data = message.encode(encoding) if isinstance(message, str) else message
        self.sock.sendall(frame(data))
        return self.read_ack()

    def close(self) -> None:
        """Close the connection."""
        self.sock.close()

    def __enter__(self) -> MllpClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
