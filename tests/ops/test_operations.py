"""Operator notices and the bulletin's quality gate, against real servers and a real warehouse.

The warehouse (built with the warehouse's own writers) holds 8 weeks and 3 days of visits
ending on Sunday 2025-03-16, with four facilities (visits per day):

- F01 20 every day, F02 12 every day but Friday 2025-03-14 (silent that day),
- F03 3 on weekdays, silent on 2025-03-14 (too small to be reported as silent),
- F04 15 on weekdays, closed at weekends; F05 is listed but has never reported.

Batches (source ``sql``, a planted database password in the location): ``b-hist`` (to
03-12, started 03-13 01:00), ``b-thu`` (03-13: 50 extracted, all loaded, started 03-14),
``b-fri`` (03-14: 45 extracted, 35 loaded, 10 quarantined, started 03-15), ``b-weekend``
(03-15/16, finished 03-17 01:05), then ``b-fail`` (rejected, 03-17 02:00) and ``b-empty``
(nothing new, 03-17 03:00). Source ``hl7`` loaded at 03-17 06:00; source ``fhir`` has
one rejected batch (03-16 10:00) and never loaded; source ``csv`` has a batch rejected
whole on 03-19, a day without visits.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from reports.notify import NotifySettings, parse_notify_settings
from sentinel.errors import UsageError
from sentinel.operations import (
    GateResult,
    OpsEvent,
    check_lateness,
    compose_ops_message,
    event_from_context,
    notify_operators,
    quality_gate,
    redact,
)
from tests.servers import (
    PASSWORD,
    USER,
    SmtpServer,
    WebhookServer,
    free_port,
    smtp_server,
    webhook_server,
)
from warehouse.store import Warehouse

FRIDAY = dt.date(2025, 3, 14)
SECRET = "Pl4nted-Secret"
DB_URL = f"postgresql://sentinel:{SECRET}@his.example/his"
SHOWN_URL = "postgresql://sentinel:***@his.example/his"
NAMES = {"F01": "华山医院", "F02": "同仁医院", "F03": "新华社区卫生服务中心", "F04": "天山中医医院"}


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def hook() -> Iterator[WebhookServer]:
    with webhook_server() as server:
        yield server


def _per_day(facility: str, day: dt.date) -> int:
    weekend = day.weekday() >= 5
    if facility == "F01":
        return 20
    if facility == "F02":
        return 0 if day == FRIDAY else 12
    if facility == "F03":
        return 0 if weekend or day == FRIDAY else 3
    return 0 if weekend else 15  # F04


def _visits(days: list[dt.date]) -> pd.DataFrame:
    rows = []
    for day in days:
        for facility in sorted(NAMES):
            for k in range(_per_day(facility, day)):
                time = dt.datetime.combine(day, dt.time(8)) + dt.timedelta(minutes=7 * k)
                rows.append(
                    {
                        "visit_key": f"{facility}-{day:%Y%m%d}-{k:03d}",
                        "source": "sql",
                        "facility_id": facility,
                        "visit_date": day,
                        "visit_time": time,
                        "setting": "outpatient",
                        "patient_key": f"pk-{facility}-{day:%Y%m%d}-{k}",
                        "sex": "F",
                        "age_years": 34,
                        "age_group": "25-59",
                        "street_code": "310105001000",
                        "residence_method": "code",
                        "chief_complaint": "发热咳嗽2天",
                        "diagnosis_codes": ["J06.9"],
                        "temperature_c": 38.2,
                        "syndromes": ["respiratory"],
                        "updated_at": time + dt.timedelta(minutes=30),
                    }
                )
    frame = pd.DataFrame(rows)
    for col in ("visit_time", "updated_at"):
        frame[col] = pd.to_datetime(frame[col]).astype("datetime64[us]")
    return frame


def _batch(
    batch_id: str, source: str, location: str, started: str, **counts: Any
) -> dict[str, Any]:
    start = dt.datetime.fromisoformat(started)
    return {
        "batch_id": batch_id,
        "source": source,
        "location": location,
        "extracted": counts.get("extracted", counts.get("loaded", 0)),
        "loaded": counts.get("loaded", 0),
        "quarantined": counts.get("quarantined", 0),
        "replaced": 0,
        "started": start,
        "finished": start + dt.timedelta(minutes=5),
        "status": counts.get("status", "loaded"),
    }


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    wh = Warehouse(tmp_path_factory.mktemp("ops") / "warehouse")
    wh.replace_table(
        "facilities",
        pd.DataFrame(
            {
                "facility_id": [*NAMES, "F05"],
                "name_zh": [*NAMES.values(), "新开诊所"],
                "name_en": [None] * 5,
                "level": [None] * 5,
                "kind": [None] * 5,
                "street_code": ["310105001000"] * 5,
            }
        ),
    )
    first = FRIDAY - dt.timedelta(weeks=8)
    span = [first + dt.timedelta(days=k) for k in range(59)]  # to Sunday 03-16
    loads = {
        "b-hist": ([d for d in span if d < FRIDAY - dt.timedelta(days=1)], "2025-03-13 01:00"),
        "b-thu": ([FRIDAY - dt.timedelta(days=1)], "2025-03-14 01:00"),
        "b-fri": ([FRIDAY], "2025-03-15 01:00"),
        "b-weekend": ([d for d in span if d > FRIDAY], "2025-03-17 01:00"),
    }
    for batch_id, (days, started) in loads.items():
        visits = _visits(days)
        wh.upsert_visits(visits, batch_id)
        extra = {"extracted": 45, "quarantined": 10} if batch_id == "b-fri" else {}
        wh.record_batch(_batch(batch_id, "sql", DB_URL, started, loaded=len(visits), **extra))
    for row in (
        _batch("b-fail", "sql", DB_URL, "2025-03-17 02:00", extracted=30, status="rejected"),
        _batch("b-empty", "sql", DB_URL, "2025-03-17 03:00"),
        _batch("b-hl7", "hl7", "/data/hl7", "2025-03-17 06:00", loaded=5),
        _batch("b-fhir", "fhir", "/data/fhir", "2025-03-16 10:00", extracted=8, status="rejected"),
        _batch("b-rej", "csv", "/data/csv", "2025-03-19 03:00", extracted=40, status="rejected"),
    ):
        wh.record_batch(row)
    return wh


def _all_text(events: list[OpsEvent]) -> str:
    return "\n".join("\n".join(compose_ops_message(e)[:2]) for e in events)


def test_late_sources_and_silent_facilities(store: Warehouse) -> None:
    monday = dt.datetime(2025, 3, 17, 9, 0)
    events = check_lateness(store, monday, source_hours=6)
    assert [(e.kind, e.message) for e in events] == [
        ("source_late", "source fhir at /data/fhir: no visits loaded for more than 6 h"),
        ("source_late", f"source sql at {SHOWN_URL}: no visits loaded for more than 6 h"),
    ]  # hl7 loaded 3 h ago; csv's first batch is still to come; Sunday: F04 is closed
    assert events[0].details == (
        "no visits loaded since its first batch at 2025-03-16 10:00",
        "hours without visits: 23.0",
        "batches since: 1 (rejected 1)",
    )
    assert events[1].details == (
        "last visits loaded: 2025-03-17 01:05",
        "hours without visits: 7.9",
        "batches since: 2 (loaded 1, rejected 1)",
    )
    # Saturday morning: Friday was the last complete day; F03's usual 3 is too small.
    saturday = dt.datetime(2025, 3, 15, 9, 0)
    [silent] = check_lateness(store, saturday, source_hours=24)
    assert silent.kind == "facility_silent"
    assert silent.message == "facility F02 同仁医院: no visits on 2025-03-14"
    assert silent.details[0].startswith("usually 12 visit(s)")
    # F02 did report on Thursday: not silent on each of the two days.
    assert check_lateness(store, saturday, source_hours=24, facility_days=2) == []
    assert SECRET not in _all_text([*events, silent])


def test_lateness_arguments_are_checked(store: Warehouse) -> None:
    with pytest.raises(UsageError, match="source_hours must be positive"):
        check_lateness(store, dt.datetime(2025, 3, 17), source_hours=0)
    with pytest.raises(UsageError, match="facility_days must be at least 1"):
        check_lateness(store, dt.datetime(2025, 3, 17), source_hours=6, facility_days=0)
    with pytest.raises(UsageError, match="naive local time"):
        check_lateness(store, dt.datetime(2025, 3, 17, tzinfo=dt.UTC), source_hours=6)


def test_quality_gate_passes_a_good_day(store: Warehouse) -> None:
    assert quality_gate(store, FRIDAY - dt.timedelta(days=1)) == GateResult(ok=True, reasons=())


def test_quality_gate_withholds_a_partial_day(store: Warehouse) -> None:
    gate = quality_gate(store, FRIDAY)
    assert not gate.ok
    assert gate.reasons == (
        # b-thu (50, started on the day) and b-fri (45, the day's visits): 10 / 95
        "10 of 95 records extracted for 2025-03-14 were quarantined (10.5%; at most 5% allowed)",
        "only 2 of 4 usually-reporting facilities reported visits (50%; at least 80% needed); "
        "silent: F02, F03",
    )  # 35 visits against a usual 50 (70 %) is enough volume
    looser = quality_gate(store, FRIDAY, max_quarantine_share=0.2, min_reporting_share=0.5)
    assert looser.ok
    strict = quality_gate(
        store, FRIDAY, max_quarantine_share=0.2, min_reporting_share=0.5, min_volume_share=0.75
    )
    assert strict.reasons == (
        "35 visits for 2025-03-14 against a usual 50 (70%; at least 75% needed)",
    )


def test_quality_gate_withholds_an_empty_day(store: Warehouse) -> None:
    gate = quality_gate(store, dt.date(2025, 3, 19))
    assert gate == GateResult(
        ok=False,
        reasons=(
            "no visits were loaded for 2025-03-19",
            "1 batch(es) behind 2025-03-19 were rejected whole by validation "
            "(40 records not loaded)",
        ),
    )
    with pytest.raises(UsageError, match="min_reporting_share must be between 0 and 1"):
        quality_gate(store, FRIDAY, min_reporting_share=80)


def test_redact_masks_secrets_and_identifiers() -> None:
    text = (
        "could not connect to postgresql://sentinel:p@ss/w0rd@db.example/his?password=x1"
        "&key=TOKEN123 for 张三 11010519491231002X 13812345678\nsecond line with more"
    )
    got = redact(text)
    assert got.startswith("could not connect to postgresql://sentinel:***@db.example/his")
    for leaked in ("p@ss", "w0rd", "x1", "TOKEN123", "11010519491231002X", "13812345678"):
        assert leaked not in got
    assert "second line" not in got and "\n" not in got
    assert len(redact("x" * 1000)) == 300


class _TaskInstance(SimpleNamespace):
    """Stands in for Airflow's RuntimeTaskInstance: the attributes a callback reads."""


def test_event_from_a_callback_context() -> None:
    ti = _TaskInstance(
        dag_id="detect_nightly",
        task_id="detect",
        run_id="scheduled__2025-03-14T18:00:00+00:00",
        try_number=3,
        map_index=2,
        log_url="http://localhost:8080/dags/detect_nightly/runs/x/tasks/detect/mapped/2",
    )
    error = ConnectionError(f"cannot reach {DB_URL}\n[SQL: SELECT * FROM visits]")
    event = event_from_context(
        {"ti": ti, "logical_date": dt.datetime(2025, 3, 14, 18, tzinfo=dt.UTC), "exception": error}
    )
    assert event == OpsEvent(
        kind="task_failed",
        dag_id="detect_nightly",
        task_id="detect",
        run_id="scheduled__2025-03-14T18:00:00+00:00",
        logical_date="2025-03-14T18:00:00+00:00",
        try_number=3,
        log_url=ti.log_url,
        message=f"ConnectionError: cannot reach {SHOWN_URL}",
        details=("map index: 2",),
    )
    manual = event_from_context({"ti": ti, "exception": None})
    assert manual.logical_date is None and "without an exception" in manual.message
    _, text, _ = compose_ops_message(manual)
    assert "none (manual run)" in text


def _notify(port: int, **kw: Any) -> NotifySettings:
    base = NotifySettings(
        recipients=("epi@cdc.example",),
        operators=("ops@cdc.example", "oncall@cdc.example"),
        from_address="sentinel@cdc.example",
        smtp_host="127.0.0.1",
        smtp_port=port,
        timeout=5,
    )
    return dataclasses.replace(base, **kw)


FAILED = OpsEvent(
    kind="task_failed",
    dag_id="ingest_hourly",
    task_id="pull",
    run_id="scheduled__2025-03-14T01:00:00+00:00",
    logical_date="2025-03-14T01:00:00+00:00",
    try_number=1,
    log_url="http://localhost:8080/dags/ingest_hourly/runs/r/tasks/pull?try_number=1",
    message="OperationalError: connection refused",
)
LOGIN = {"SENTINEL_SMTP_USER": USER, "SENTINEL_SMTP_PASSWORD": PASSWORD}


def test_operators_get_mail_and_chat(smtp: SmtpServer, hook: WebhookServer) -> None:
    notify = _notify(smtp.port, webhook_url=f"{hook.url}/send?key=TOKEN")
    assert notify_operators(notify, FAILED, environ=LOGIN) == []
    [(rcpt, _)] = smtp.messages
    assert rcpt == ["ops@cdc.example", "oncall@cdc.example"]  # operators, not recipients
    got = smtp.parsed()
    assert got["Subject"] == (
        "[Sentinel] 任务失败 / task failed: ingest_hourly.pull (2025-03-14T01:00:00+00:00)"
    )
    body = got.get_body(("plain",))
    assert body is not None
    plain = body.get_content()
    for line in (
        "DAG / DAG: ingest_hourly",
        "任务 / Task: pull",
        "逻辑日期 / Logical date: 2025-03-14T01:00:00+00:00",
        f"日志 / Log: {FAILED.log_url}",
        "说明 / What: OperationalError: connection refused",
    ):
        assert line in plain.splitlines()
    [(path, _, payload)] = hook.received
    assert path == "/send?key=TOKEN"
    assert payload["msgtype"] == "markdown"
    assert "ingest_hourly" in payload["markdown"]["content"]


def test_recipients_stand_in_for_operators_and_json_webhooks(
    smtp: SmtpServer, hook: WebhookServer
) -> None:
    event = OpsEvent(kind="quality_failed", message="bulletin of 2025-03-14 withheld",
                     details=("only 2 of 4 usually-reporting facilities reported visits",))  # fmt: skip
    notify = _notify(smtp.port, operators=(), webhook_url=hook.url, webhook_format="json")
    assert notify_operators(notify, event, environ={}) == []
    assert smtp.messages[0][0] == ["epi@cdc.example"]
    [(_, _, payload)] = hook.received
    assert payload["kind"] == "quality_failed"
    assert payload["message"] == "bulletin of 2025-03-14 withheld"
    assert payload["details"] == list(event.details)
    assert payload["dag_id"] is None


def test_delivery_problems_are_returned_not_raised(hook: WebhookServer) -> None:
    dead = _notify(free_port(), webhook_url=f"{hook.url}/fail?key=TOKEN")
    problems = notify_operators(dead, FAILED, environ={})
    assert len(problems) == 2
    assert problems[0].startswith("e-mail to operators not sent: cannot reach SMTP server")
    assert problems[1].startswith("webhook notice not posted:") and "HTTP 500" in problems[1]
    assert not any("TOKEN" in p for p in problems)
    assert notify_operators(NotifySettings(), FAILED) == [
        "no channel for operator notices: set smtp_host or webhook_url in [notify]"
    ]
    nobody = _notify(free_port(), operators=(), recipients=())
    assert notify_operators(nobody, FAILED) == [
        "no operators to e-mail: set operators (or recipients) in [notify]"
    ]


def test_operators_setting_is_parsed() -> None:
    parsed = parse_notify_settings({"operators": ["ops@cdc.example"]}, "sentinel.toml", {})
    assert parsed.operators == ("ops@cdc.example",) and parsed.recipients == ()
    with pytest.raises(UsageError, match="operators must be a list"):
        parse_notify_settings({"operators": "ops@cdc.example"}, "sentinel.toml", {})
    with pytest.raises(UsageError, match=r"\[notify\] operators in sentinel.toml"):
        parse_notify_settings({"operators": ["not an address"]}, "sentinel.toml", {})


_DAG = """
import datetime as dt
import json
from pathlib import Path

from airflow.sdk import dag, task

from reports.notify import NotifySettings
from sentinel.operations import event_from_context, notify_operators

NOTIFY = NotifySettings(
    operators=("ops@cdc.example",),
    from_address="sentinel@cdc.example",
    smtp_host="127.0.0.1",
    smtp_port={port},
    timeout=10,
)


def on_failure(context):
    problems = notify_operators(NOTIFY, event_from_context(context), environ={{}})
    Path({problems!r}).write_text(json.dumps(problems))


@dag(
    dag_id="ops_boom",
    schedule=None,
    start_date=dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    default_args={{"retries": 0, "on_failure_callback": on_failure}},
)
def ops_boom():
    @task
    def explode():
        raise RuntimeError("cannot reach {url}\\nsecond line of the traceback")

    explode()


the_dag = ops_boom()
"""
_RUN = """
import datetime as dt, runpy, sys
dag = runpy.run_path(sys.argv[1])["the_dag"]
dag.test(logical_date=dt.datetime(2025, 3, 14, 18, 0, tzinfo=dt.timezone.utc))
"""


@pytest.mark.slow
def test_a_failing_airflow_task_mails_the_operators(
    airflow_env: dict[str, str], smtp: SmtpServer, tmp_path: Path
) -> None:
    dags = Path(airflow_env["AIRFLOW__CORE__DAGS_FOLDER"])
    problems = tmp_path / "problems.json"
    dag_file = dags / "ops_boom.py"
    dag_file.write_text(_DAG.format(port=smtp.port, problems=str(problems), url=DB_URL))
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_RUN), str(dag_file)],
        env=airflow_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(problems.read_text()) == []
    [(rcpt, _)] = smtp.messages
    assert rcpt == ["ops@cdc.example"]
    got = smtp.parsed()
    assert got["Subject"] == (
        "[Sentinel] 任务失败 / task failed: ops_boom.explode (2025-03-14T18:00:00+00:00)"
    )
    body = got.get_body(("plain",))
    assert body is not None
    lines = body.get_content().splitlines()
    assert "DAG / DAG: ops_boom" in lines
    assert "任务 / Task: explode" in lines
    assert "逻辑日期 / Logical date: 2025-03-14T18:00:00+00:00" in lines
    assert "尝试次数 / Try: 1" in lines
    [log] = [line for line in lines if line.startswith("日志 / Log: ")]
    assert log.startswith("日志 / Log: http://localhost:8080/dags/ops_boom/runs/")
    assert "/tasks/explode" in log
    assert f"说明 / What: RuntimeError: cannot reach {SHOWN_URL}" in lines
    text = "\n".join(lines) + got["Subject"]
    assert SECRET not in text and "second line" not in text
