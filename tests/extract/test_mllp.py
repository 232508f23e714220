"""MLLP listener on a real TCP socket (127.0.0.1, ephemeral port): ACKs, framing, failures."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import hl7
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extract.mllp import HANDLER_FAILED, MllpClient, MllpFramer, frame, serve_mllp

ASSETS = Path(__file__).parent / "assets"


def messages_of(name: str) -> list[str]:
    return list(hl7.split_file((ASSETS / name).read_bytes().decode("utf-8")))


GOOD, BAD_TIMESTAMP = messages_of("bad_timestamp.hl7")[:2]
ORU = messages_of("non_adt.hl7")[1]
GOOD_2 = messages_of("bad_timestamp.hl7")[3]


def segment(ack: str, name: str) -> list[str]:
    """Fields of the first ``name`` segment of an ACK (``fields[n]`` is field n; MSH shifted)."""
    for seg in ack.split("\r"):
        if seg.startswith(name):
            fields = seg.split("|")
            return ["MSH", "|", *fields[1:]] if name == "MSH" else fields
    raise AssertionError(f"no {name} segment in {ack!r}")


def ack_code(ack: str) -> str:
    return segment(ack, "MSA")[1]


@dataclass
class Server:
    port: int
    records: list[dict[str, object]]
    stop: threading.Event
    thread: threading.Thread
    calls: list[str] = field(default_factory=list)

    def client(self) -> MllpClient:
        return MllpClient("127.0.0.1", self.port, timeout=5)


def start(handler: Callable[[dict[str, object]], None], records: list[dict[str, object]]) -> Server:
    ready, stop = threading.Event(), threading.Event()
    ports: list[int] = []
    thread = threading.Thread(
        target=serve_mllp,
        args=("127.0.0.1", 0, handler),
        kwargs={"ready": ready, "stop": stop, "on_bound": ports.append},
        daemon=True,
    )
    thread.start()
    assert ready.wait(5), "MLLP server did not start"
    return Server(ports[0], records, stop, thread)


def shut(server: Server) -> None:
    server.stop.set()
    server.thread.join(5)
    assert not server.thread.is_alive(), "stop event did not end the server"


@pytest.fixture
def server() -> Iterator[Server]:
    records: list[dict[str, object]] = []
    srv = start(records.append, records)
    yield srv
    shut(srv)


def test_good_message_is_accepted_and_handled(server: Server) -> None:
    with server.client() as client:
        ack = client.send(GOOD)
    assert ack_code(ack) == "AA"
    msa, msh = segment(ack, "MSA"), segment(ack, "MSH")
    assert msa[2] == "GOOD-1"
    assert msh[9] == "ACK^A04^ACK"
    # sending and receiving application/facility swapped
    assert (msh[3], msh[4], msh[5], msh[6]) == ("SENTINEL", "CNCDC", "F01_HIS", "F01^F01^L")
    assert len(server.records) == 1
    record = server.records[0]
    assert record["source_visit_id"] == "F01-20250105-00001"
    assert record["row_ref"] == "mllp:GOOD-1" and record["source"] == "hl7"


def test_bad_timestamp_is_an_application_error(server: Server) -> None:
    with server.client() as client:
        ack = client.send(BAD_TIMESTAMP)
    assert ack_code(ack) == "AE"
    assert segment(ack, "MSA")[2] == "BADTS-1"
    assert "bad timestamp in PV1-44" in segment(ack, "MSA")[3]
    err = segment(ack, "ERR")
    assert err[3].startswith("102^") and err[4] == "E" and "PV1-44" in err[8]
    assert server.records == []


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        (b"hello, this is not HL7", "not an HL7 message"),
        (ORU.encode(), "not an ADT message"),
        (GOOD.replace("|2.5.1|", "|3.0|").encode(), "unsupported HL7 version"),
    ],
)
def test_unprocessable_frames_are_rejected(server: Server, payload: bytes, words: str) -> None:
    with server.client() as client:
        ack = client.send(payload)
    assert ack_code(ack) == "AR"
    assert words in segment(ack, "MSA")[3]
    assert server.records == []


def test_two_messages_in_one_packet(server: Server) -> None:
    with server.client() as client:
        client.send_bytes(frame(GOOD.encode()) + frame(GOOD_2.encode()))
        acks = [client.read_ack(), client.read_ack()]
    assert [segment(a, "MSA")[2] for a in acks] == ["GOOD-1", "GOOD-2"]
    assert [ack_code(a) for a in acks] == ["AA", "AA"]
    assert len(server.records) == 2


def test_one_message_in_three_packets_with_garbage_between_frames(server: Server) -> None:
    data = b"\r\n noise" + frame(GOOD.encode())
    cuts = (5, len(data) // 2, len(data) - 1)  # the last cut splits the end block
    with server.client() as client:
        for a, b in zip((0, *cuts), (*cuts, len(data)), strict=True):
            client.send_bytes(data[a:b])
            time.sleep(0.02)
        assert ack_code(client.read_ack()) == "AA"
        assert ack_code(client.send(GOOD_2)) == "AA"
    assert len(server.records) == 2


def test_server_survives_a_client_that_disconnects_mid_frame(server: Server) -> None:
    half = frame(GOOD.encode())[:100]
    for _ in range(3):
        with server.client() as client:
            client.send_bytes(half)
    raw = socket.create_connection(("127.0.0.1", server.port))
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    raw.sendall(half)
    raw.close()  # a reset rather than an orderly close
    with server.client() as client:
        assert ack_code(client.send(GOOD_2)) == "AA"
    assert [r["source_visit_id"] for r in server.records] == ["F01-20250105-00002"]


def test_gb18030_message_is_decoded() -> None:
    text = hl7.split_file((ASSETS / "gb18030.hl7").read_bytes().decode("gb18030"))[0]
    records: list[dict[str, object]] = []
    srv = start(records.append, records)
    try:
        with srv.client() as client:
            ack = client.send(text.encode("gb18030"))
    finally:
        shut(srv)
    assert ack_code(ack) == "AA"
    assert records[0]["name"] == "䶮晗"


def test_broken_bytes_in_a_declared_utf8_message_are_an_error(server: Server) -> None:
    data = GOOD.encode().replace("王".encode(), b"\xff\xfe")
    with server.client() as client:
        ack = client.send(data)
    assert ack_code(ack) == "AE"
    assert "undecodable bytes" in segment(ack, "MSA")[3]
    assert server.records == []


def test_handler_failure_is_an_application_error_logged_without_identifiers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def failing(record: dict[str, object]) -> None:
        raise RuntimeError(f"cannot store {record['name']} {record['id_number']}")

    srv = start(failing, [])
    try:
        with (
            caplog.at_level(logging.INFO, logger="sentinel.extract.mllp"),
            srv.client() as client,
        ):
            ack = client.send(GOOD)
            assert ack_code(client.send(GOOD_2)) == "AE"  # still serving
    finally:
        shut(srv)
    assert ack_code(ack) == "AE"
    assert segment(ack, "MSA")[3] == HANDLER_FAILED
    assert segment(ack, "ERR")[3].startswith("207^")
    failures = [r for r in caplog.records if r.getMessage() == "mllp_handler_failed"]
    assert len(failures) == 2
    text = caplog.text + " ".join(str(getattr(r, "fields", "")) for r in caplog.records)
    assert "王伟" not in text and "31010519800315001X" not in text and "13812345678" not in text


def test_stop_event_ends_the_server() -> None:
    srv = start(lambda record: None, [])
    idle = srv.client()  # an open, idle connection must not keep the server alive
    shut(srv)
    idle.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", srv.port), timeout=1).close()


@settings(max_examples=60, deadline=None)
@given(
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=8),
    noise=st.binary(max_size=20).filter(lambda b: b"\x0b" not in b),
)
def test_framer_recovers_frames_however_the_stream_is_cut(cuts: list[int], noise: bytes) -> None:
    payloads = [GOOD.encode(), b"x", GOOD_2.encode()]
    stream = noise + b"".join(frame(p) + noise for p in payloads)
    framer = MllpFramer()
    got: list[bytes] = []
    points = sorted({min(c, len(stream)) for c in cuts})
    for a, b in zip((0, *points), (*points, len(stream)), strict=True):
        got += framer.feed(stream[a:b])
    assert got == payloads
    assert framer.discarded == len(noise) * (len(payloads) + 1)


def test_framer_drops_an_abandoned_frame_and_oversized_frames() -> None:
    framer = MllpFramer(max_frame=10)
    assert framer.feed(b"\x0bhalf a mess" + frame(b"ok")) == [b"ok"]
    assert framer.feed(frame(b"far too long for it")) == []
    assert framer.feed(frame(b"fine")) == [b"fine"]
