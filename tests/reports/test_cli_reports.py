"""`sentinel report` and `sentinel alerts …` from the command line, on the reports fixture."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from sentinel.cli import main


@pytest.fixture
def home(bulletin_warehouse: Any, tmp_path: Path) -> Path:
    copy = tmp_path / "home"
    shutil.copytree(bulletin_warehouse.settings.home, copy)
    # the catalog holds absolute paths: refresh it for the copy
    from warehouse.store import Warehouse

    (copy / "warehouse" / ".catalog.json").unlink(missing_ok=True)
    Warehouse(copy / "warehouse")
    return copy


def test_report_command(
    home: Path, bulletin_warehouse: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    out = home / "out"
    day = bulletin_warehouse.day.isoformat()
    assert main(["--home", str(home), "report", "--date", day, "--out", str(out)]) == 0
    assert (out / "bulletin.html").is_file() and (out / "bulletin.pdf").is_file()
    assert "bulletin for" in capsys.readouterr().err


def test_alerts_list_show_update(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--home", str(home), "alerts", "list", "--format", "json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert rows
    first = rows[0]["alert_id"]
    assert main(["--home", str(home), "alerts", "update", first, "--status", "investigating",
                 "--assignee", "张三"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["--home", str(home), "alerts", "show", first]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert "张三" in json.dumps(shown, ensure_ascii=False)
    # closing without an outcome is refused with one line
    assert main(["--home", str(home), "alerts", "update", first, "--status", "closed"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sentinel: error:") and len(err.splitlines()) == 1
    assert main(["--home", str(home), "alerts", "show", "no-such-alert"]) == 2


def test_stats_command(
    home: Path, bulletin_warehouse: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    out = home / "stats"
    end = bulletin_warehouse.day.isoformat()
    args = ["--home", str(home), "stats", "--period", "week", "--end", end, "--out", str(out)]
    assert main(args) == 0
    assert "statistics" in capsys.readouterr().err
    assert any(out.glob("*.xlsx")) and any(out.glob("*.html"))
    assert main([*args[:-2], "--period", "year"]) == 2
    assert "--period" in capsys.readouterr().err


def test_report_is_emailed_and_posted(
    home: Path, bulletin_warehouse: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    import email
    import socket
    import threading
    from email import policy
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from aiosmtpd.controller import Controller

    received: list[bytes] = []
    posted: list[dict[str, Any]] = []

    class Inbox:
        async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
            received.append(envelope.content)
            return "250 OK"

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            posted.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            body = b'{"errcode": 0}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(Inbox(), hostname="127.0.0.1", port=port)
    controller.start()
    http = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    try:
        (home / "sentinel.toml").write_text(
            "[notify]\n"
            'recipients = ["cdc-duty@example.org"]\n'
            'from_address = "sentinel@example.org"\n'
            f'smtp_host = "127.0.0.1"\nsmtp_port = {port}\n'
            f'webhook_url = "http://127.0.0.1:{http.server_address[1]}/hook"\n',
            encoding="utf-8",
        )
        day = bulletin_warehouse.day.isoformat()
        out = home / "out"
        args = ["--home", str(home), "report", "--date", day, "--out", str(out)]
        assert main([*args, "--email", "--webhook"]) == 0
        err = capsys.readouterr().err
        assert "e-mailed to cdc-duty@example.org" in err and "posted to the webhook" in err
    finally:
        controller.stop()
        http.shutdown()
    message = email.message_from_bytes(received[0], policy=policy.default)
    assert "症状监测" in str(message["Subject"])
    pdf = [p for p in message.iter_attachments() if p.get_content_type() == "application/pdf"]
    assert pdf and pdf[0].get_content() == (out / "bulletin.pdf").read_bytes()
    assert posted and posted[0]["msgtype"] == "markdown"
