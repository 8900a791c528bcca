"""Alerts' plain rules: handling transitions, who sees what, webhook matching, masking and backoff,
opening hours and silent terminals, and the settings that configure them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from servicekit.settings import SettingsError, load_settings
from services.alerts.domain.alerts import (
    Actor,
    Alert,
    AlertAlreadyResolved,
    AlertKind,
    AlertNotOpen,
    AlertState,
    AlertVersionConflict,
    HeadquartersOnly,
    InvalidNote,
    Severity,
    SuppliersHaveNoFeed,
    dedup_key,
)
from services.alerts.domain.opening_hours import InvalidOpeningHours, OpeningHours, StoreHours
from services.alerts.domain.terminals import TerminalSeen, silence_spell, silent_terminals
from services.alerts.domain.webhooks import InvalidWebhook, RetryPolicy, Webhook, WebhookFormat, body, mask_url
from services.alerts.settings import AlertsSettings

AT = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)
HOURS = StoreHours.parse("+08:00", "08:00-22:00", {"S002": "10:00-20:00"})


def alert(store: str = "S001", kind: AlertKind = AlertKind.LOW_STOCK, severity: Severity = Severity.WARNING) -> Alert:
    return Alert(
        "AL1",
        kind,
        severity,
        AlertState.OPEN,
        store,
        "",
        "SKU1",
        dedup_key(kind, store, "", "SKU1"),
        "low",
        {},
        [],
        "",
        AT,
        AT,
    )


def test_acknowledge_then_resolve_and_their_refusals() -> None:
    found = alert()
    with pytest.raises(AlertVersionConflict):
        found.acknowledge("m", AT, expected_version=2)
    assert found.acknowledge("m", AT, expected_version=1) is AlertState.OPEN
    assert (found.state, found.acknowledged_by, found.version) == (AlertState.ACKNOWLEDGED, "m", 2)
    with pytest.raises(AlertNotOpen):
        found.acknowledge("m", AT)
    with pytest.raises(InvalidNote):
        found.resolve("m", AT, "x" * 501)
    assert found.resolve("m", AT, "x" * 500) is AlertState.ACKNOWLEDGED
    with pytest.raises(AlertAlreadyResolved):
        found.resolve("m", AT, "")
    assert found.version == 3


def test_dedup_keys_name_kind_place_and_subject() -> None:
    assert dedup_key(AlertKind.LOW_STOCK, "S001", "", "SKU1") == "low_stock|S001|SKU1"
    assert dedup_key(AlertKind.STATEMENT_DISPUTED, "", "SUP1", "ST1") == "statement_disputed|supplier:SUP1|ST1"
    assert dedup_key(AlertKind.SALES_ANOMALY, "", "", "X") == "sales_anomaly|chain|X"


def test_store_staff_see_their_store_suppliers_nothing_and_webhooks_are_headquarters() -> None:
    manager = Actor("m", "staff", "store_manager", store_id="S001")
    assert manager.sees(alert("S001"))
    assert not manager.sees(alert("S002"))
    assert manager.store_scope("S002") == "S001"
    with pytest.raises(HeadquartersOnly):
        manager.check_headquarters()
    with pytest.raises(SuppliersHaveNoFeed):
        Actor("p", "supplier_user", "", supplier_id="SUP1").check_reads_feed()
    with pytest.raises(SuppliersHaveNoFeed):
        Actor("t", "pos_terminal", "", store_id="S001").check_reads_feed()
    Actor("hq", "staff", "headquarters").check_headquarters()


def test_webhooks_match_by_store_role_kind_and_severity() -> None:
    def hook(**fields: Any) -> Webhook:
        return Webhook("W1", "ops", "https://robot.example/send?key=abcd1234", WebhookFormat.WECOM, **fields)

    assert hook().matches(alert())
    assert not hook(store_id="S002").matches(alert("S001"))
    assert not hook(kinds=frozenset({AlertKind.OVERSTOCK})).matches(alert())
    assert not hook(min_severity=Severity.CRITICAL).matches(alert())
    assert hook(role="store_guide").matches(alert())
    assert not hook(role="store_guide").matches(alert(kind=AlertKind.SALES_ANOMALY))
    assert not hook(role="store_manager").matches(alert(kind=AlertKind.STATEMENT_DISPUTED))


def test_webhook_urls_are_validated_and_masked() -> None:
    for url in (
        "ftp://robot.example/x",
        "robot.example/send",
        "https://",
        "http:///x",
        "http://robot.example:99999/x",
        "http://[::1/x",
        "https://robot.example/a b",
    ):
        with pytest.raises(InvalidWebhook):
            Webhook("W1", "ops", url, WebhookFormat.WECOM)
    with pytest.raises(InvalidWebhook):
        Webhook("W 1", "ops", "https://robot.example/x", WebhookFormat.WECOM)
    assert mask_url("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=secret9876") == (
        "https://qyapi.weixin.qq.com/…9876"
    )
    assert mask_url("http://127.0.0.1:8080/robot") == "http://127.0.0.1:8080/…obot"


def test_bodies_in_the_robots_shapes() -> None:
    wecom = body(WebhookFormat.WECOM, alert())
    dingtalk = body(WebhookFormat.DINGTALK, alert())
    assert wecom == {"msgtype": "markdown", "markdown": {"content": dingtalk["markdown"]["text"]}}  # type: ignore[index]  # a JSON object
    assert dingtalk["markdown"]["title"] == "[WARNING] low stock"  # type: ignore[index]  # a JSON object


def test_backoff_doubles_up_to_its_cap_and_gives_up() -> None:
    policy = RetryPolicy(max_attempts=4, base=timedelta(seconds=5), cap=timedelta(seconds=12))
    assert [policy.next_attempt(n, AT) for n in (1, 2, 3, 4)] == [
        AT + timedelta(seconds=5),
        AT + timedelta(seconds=10),
        AT + timedelta(seconds=12),
        None,
    ]


def test_opening_hours_count_only_while_open() -> None:
    friday_9 = datetime(2026, 12, 4, 1, 0, tzinfo=UTC)  # 09:00 at +08:00
    # From Thursday 21:00 to Friday 09:00: one hour on Thursday evening, one on Friday morning.
    assert HOURS.open_seconds_between("S001", friday_9 - timedelta(hours=12), friday_9) == 2 * 3600
    assert HOURS.open_seconds_between("S002", friday_9 - timedelta(hours=12), friday_9) == 0
    for text in ("8:00-22:00", "22:00-08:00", "08:00-24:01"):
        with pytest.raises(InvalidOpeningHours):
            OpeningHours.parse(text)


def test_silent_terminals_and_the_whole_store() -> None:
    now = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)  # 16:00
    seen = [
        TerminalSeen("S001", "T1", now - timedelta(hours=2)),
        TerminalSeen("S001", "T2", now - timedelta(minutes=10)),
        TerminalSeen("S003", "T1", now - timedelta(hours=3)),
    ]
    silent = silent_terminals(seen, HOURS, now, timedelta(hours=1))
    assert [(s.terminal.store_id, s.terminal.terminal_id, s.whole_store) for s in silent] == [
        ("S001", "T1", False),
        ("S003", "T1", True),
    ]
    assert silence_spell(None, now, timedelta(minutes=30)) is None
    assert silence_spell(now - timedelta(minutes=29), now, timedelta(minutes=30)) is None
    assert silence_spell(now - timedelta(minutes=30), now, timedelta(minutes=30)) == (now - timedelta(minutes=30), now)


def test_settings_read_per_store_opening_hours(monkeypatch: pytest.MonkeyPatch) -> None:
    base = {"app_env": "test", "database_url": "postgresql://x/y", "nats_url": "nats://x"}
    monkeypatch.setenv("STORE_OPENING_HOURS", "S001=07:00-23:00, S002=09:00-21:00")
    settings = load_settings(AlertsSettings, **base)
    assert settings.store_hours.hours_of("S001") == OpeningHours.parse("07:00-23:00")
    assert settings.store_hours.hours_of("S009") == OpeningHours.parse("08:00-22:00")
    monkeypatch.setenv("STORE_OPENING_HOURS", "S001=23:00-07:00")
    with pytest.raises(SettingsError):
        load_settings(AlertsSettings, **base)
    monkeypatch.delenv("STORE_OPENING_HOURS")
    with pytest.raises(SettingsError):
        load_settings(AlertsSettings, **base, business_time_zone="Mars/Olympus")
