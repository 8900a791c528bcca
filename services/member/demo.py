"""The member service's part of the demo retailer: members with their identities and consent,
the item category projection, and the sales history as sale facts with the points it earned.

Personal data is sealed and identities hashed exactly as the service does it, with the keys
of the settings (the local-development defaults unless the environment sets others), so the
demo members can be resolved by phone and card through the gateway and the POS journal. The
history earns points by today's rules (a lot per member sale, expiring a year after it),
tiers come from the previous system (imported), and lifecycle stages are computed as of now.
Loading twice changes nothing: a database that already holds members is left alone.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from demodata import DemoRetailer, Member
from servicekit.db import create_engine
from servicekit.settings import Environment, load_settings
from services.member.adapters.personal_data import DataKeyring, PersonalDataCodec
from services.member.bootstrap import policies
from services.member.domain.identities import identity_hash, parse_identity
from services.member.domain.lifecycle import PurchaseRecord, lifecycle_stage, purchase_facts
from services.member.domain.model import Gender, Profile
from services.member.domain.points import PurchaseLine, points_earned
from services.member.settings import MemberSettings

_CHANNELS = {"store": "store", "online": "app", "mini_program": "mini_program", "click_and_collect": "app"}
_TIERS = {"normal": "basic", "silver": "silver", "gold": "gold", "platinum": "platinum"}
_CHUNK = 5_000


async def load_demo(database_url: str, retailer: DemoRetailer, state_dir: Path | None = None) -> dict[str, Any]:
    environment = Environment(os.environ.get("APP_ENV", "local"))
    if not environment.allows_dev_secrets:
        raise RuntimeError(f"demo members are public data; refusing to load them with APP_ENV={environment}")
    settings = load_settings(
        MemberSettings,
        app_env=environment.value,
        database_url=database_url,
        nats_url=os.environ.get("NATS_URL", "nats://127.0.0.1:4222"),
    )
    codec = PersonalDataCodec(DataKeyring(settings.data_keys))
    rules = policies(settings)
    engine = create_engine(database_url, pool_size=2, max_overflow=0, application_name="demo-loader")
    try:
        async with engine.begin() as connection:
            if (await connection.execute(text("SELECT EXISTS (SELECT 1 FROM member)"))).scalar_one():
                return {"members": 0, "note": "members were loaded before; nothing changed"}
            await _load_categories(connection, retailer)
            members = list(retailer.iter_members())
            await _load_members(connection, members, codec, settings.lookup_key, retailer.wechat_app_id)
            tiers = {member.member_id: _TIERS[member.tier.value] for member in members}
            purchases = await _load_history(connection, retailer, tiers, rules.points)
            now = datetime.now(UTC)
            stages: dict[str, list[str]] = defaultdict(list)
            for member in members:
                facts = purchase_facts(purchases.get(member.member_id, []), now, rules.lifecycle)
                stage = lifecycle_stage(member.registered_at, facts, now, rules.lifecycle).value
                stages[stage].append(member.member_id)
            for stage, ids in stages.items():
                await connection.execute(
                    text("UPDATE member SET lifecycle_stage = :stage WHERE member_id = ANY (CAST(:ids AS text[]))"),
                    {"stage": stage, "ids": ids},
                )
            await connection.execute(
                text(
                    "UPDATE member m SET points_balance = e.total FROM (SELECT member_id, sum(points) AS total "
                    "FROM points_entry GROUP BY member_id) e WHERE e.member_id = m.member_id"
                )
            )
            await connection.execute(text("SELECT setval('member_number', :n)"), {"n": max(len(members), 1)})
    finally:
        await engine.dispose()
    example = members[0] if members else None
    return {
        "members": len(members),
        "sale_facts": sum(len(p) for p in purchases.values()),
        "lifecycle_stages": {stage: len(ids) for stage, ids in sorted(stages.items())},
        "example_member": {"member_id": example.member_id, "phone": example.phone} if example else None,
    }


async def _load_categories(connection: AsyncConnection, retailer: DemoRetailer) -> None:
    parents = {
        category.category_code: category.parent_code or category.category_code for category in retailer.categories
    }
    await connection.execute(
        text(
            "INSERT INTO item_category (sku, category_id, department_id) SELECT * FROM unnest(CAST(:skus AS text[]), "
            "CAST(:categories AS text[]), CAST(:departments AS text[])) ON CONFLICT DO NOTHING"
        ),
        {
            "skus": [sku.sku_code for sku in retailer.skus],
            "categories": [sku.category_code for sku in retailer.skus],
            "departments": [parents.get(sku.category_code, sku.category_code) for sku in retailer.skus],
        },
    )


async def _load_members(
    connection: AsyncConnection, members: Sequence[Member], codec: PersonalDataCodec, lookup_key: bytes, app_id: str
) -> None:
    for start in range(0, len(members), _CHUNK):
        chunk = members[start : start + _CHUNK]
        rows: dict[str, list[Any]] = defaultdict(list)
        identities: dict[str, list[Any]] = defaultdict(list)
        consents: dict[str, list[Any]] = defaultdict(list)
        for member in chunk:
            sealed = codec.seal_profile(
                member.member_id,
                Profile(name=member.name, birthday=member.birthday, gender=Gender(member.gender.value)),
            )
            for column, value in (
                ("member_id", member.member_id),
                ("registered_at", member.registered_at),
                ("channel", _CHANNELS[member.registration_channel.value]),
                ("store", member.home_store_id),
                ("name", sealed["name"]),
                ("birthday", sealed["birthday"]),
                ("gender", member.gender.value),
                ("tier", _TIERS[member.tier.value]),
            ):
                rows[column].append(value)
            for linked in member.identities:
                identity = parse_identity(
                    linked.kind.value, linked.value, app_id if linked.kind.value == "wechat_openid" else ""
                )
                lookup = identity_hash(lookup_key, identity)
                for column, value in (
                    ("hash", lookup),
                    ("member", member.member_id),
                    ("type", identity.type.value),
                    ("sealed", codec.seal_identity(lookup, identity)),
                    ("at", linked.bound_at),
                ):
                    identities[column].append(value)
            for channel, granted in (
                ("sms", member.consent.sms),
                ("wechat", member.consent.wechat),
                ("app_push", member.consent.app_push),
            ):
                if granted:
                    for column, value in (
                        ("member", member.member_id),
                        ("channel", channel),
                        ("at", member.consent.updated_at),
                    ):
                        consents[column].append(value)
        await connection.execute(
            text(
                "INSERT INTO member (member_id, registered_at, registration_channel, home_store_id, name_sealed, "
                "birthday_sealed, gender, tier, tier_since) SELECT id, at, channel, store, name, birthday, gender, "
                "tier, at FROM unnest(CAST(:member_id AS text[]), CAST(:registered_at AS timestamptz[]), "
                "CAST(:channel AS text[]), CAST(:store AS text[]), CAST(:name AS bytea[]), CAST(:birthday AS bytea[]), "
                "CAST(:gender AS text[]), CAST(:tier AS text[])) "
                "AS v(id, at, channel, store, name, birthday, gender, tier)"
            ),
            rows,
        )
        await connection.execute(
            text(
                "INSERT INTO member_identity (identity_hash, member_id, identity_type, value_sealed, linked_at, "
                "linked_by) SELECT hash, member, type, sealed, at, 'demo' FROM unnest(CAST(:hash AS bytea[]), "
                "CAST(:member AS text[]), CAST(:type AS text[]), CAST(:sealed AS bytea[]), "
                "CAST(:at AS timestamptz[])) AS v(hash, member, type, sealed, at)"
            ),
            identities,
        )
        if consents:
            for statement in (
                "INSERT INTO member_consent (member_id, channel, granted, updated_at, source) "
                "SELECT member, channel, true, at, 'demo' FROM unnest(CAST(:member AS text[]), "
                "CAST(:channel AS text[]), CAST(:at AS timestamptz[])) AS v(member, channel, at)",
                "INSERT INTO consent_event (member_id, channel, granted, source, recorded_at) "
                "SELECT member, channel, true, 'demo', at FROM unnest(CAST(:member AS text[]), "
                "CAST(:channel AS text[]), CAST(:at AS timestamptz[])) AS v(member, channel, at)",
            ):
                await connection.execute(text(statement), consents)
        await connection.execute(
            text(
                "INSERT INTO tier_change (member_id, from_tier, to_tier, reason, changed_at) "
                "SELECT member_id, 'basic', tier, 'import', registered_at FROM member "
                "WHERE member_id = ANY (CAST(:ids AS text[])) AND tier <> 'basic'"
            ),
            {"ids": rows["member_id"]},
        )


async def _load_history(
    connection: AsyncConnection, retailer: DemoRetailer, tiers: dict[str, str], points_policy: Any
) -> dict[str, list[PurchaseRecord]]:
    """Every sale of the history as a fact; member sales earn points (entry + lot each)."""
    categories = {sku.sku_code: sku.category_code for sku in retailer.skus}
    purchases: dict[str, list[PurchaseRecord]] = defaultdict(list)
    facts: dict[str, list[Any]] = defaultdict(list)
    earns: list[tuple[str, str, str, int, datetime]] = []

    async def flush() -> None:
        await connection.execute(
            text(
                "INSERT INTO sale_fact (sale_id, kind, member_id, store_id, occurred_at, amount_minor, categories, "
                "points) SELECT id, 'sale', member, store, at, amount, CAST(cats AS text[]), points "
                "FROM unnest(CAST(:sale_id AS text[]), CAST(:member AS text[]), CAST(:store AS text[]), "
                "CAST(:at AS timestamptz[]), CAST(:amount AS bigint[]), CAST(:categories AS text[]), "
                "CAST(:points AS bigint[])) AS v(id, member, store, at, amount, cats, points) "
                "ON CONFLICT DO NOTHING"
            ),
            facts,
        )
        if earns:
            await _book_earns(connection, earns, points_policy)
        facts.clear()
        earns.clear()

    for sale in retailer.iter_sales():
        amount = int(sale.total_amount * 100)
        sale_categories = sorted({categories[line.sku_code] for line in sale.lines if line.sku_code in categories})
        points = 0
        if sale.member_id is not None:
            lines = [
                PurchaseLine(line.sku_code, categories.get(line.sku_code), int(line.net_amount * 100))
                for line in sale.lines
            ]
            points = points_earned(lines, tiers.get(sale.member_id, "basic"), points_policy)
            purchases[sale.member_id].append(
                PurchaseRecord(sale.sale_id, sale.occurred_at, sale.location_id, amount, tuple(sale_categories))
            )
            if points > 0:
                earns.append((sale.member_id, sale.sale_id, sale.location_id, points, sale.occurred_at))
        for column, value in (
            ("sale_id", sale.sale_id),
            ("member", sale.member_id),
            ("store", sale.location_id),
            ("at", sale.occurred_at),
            ("amount", amount),
            ("points", points),
            ("categories", "{" + ",".join(sale_categories) + "}"),
        ):
            facts[column].append(value)
        if len(facts["sale_id"]) >= _CHUNK:
            await flush()
    if facts:
        await flush()
    return purchases


async def _book_earns(
    connection: AsyncConnection, earns: Sequence[tuple[str, str, str, int, datetime]], points_policy: Any
) -> None:
    """One earn entry and one lot per sale, with ids taken from their sequences up front."""
    count = len(earns)
    entry_ids = [
        row[0]
        for row in await connection.execute(
            text("SELECT nextval('points_entry_entry_id_seq') FROM generate_series(1, :n)"), {"n": count}
        )
    ]
    lot_ids = [
        row[0]
        for row in await connection.execute(
            text("SELECT nextval('points_lot_lot_id_seq') FROM generate_series(1, :n)"), {"n": count}
        )
    ]
    columns = {
        "entry": entry_ids,
        "lot": lot_ids,
        "member": [e[0] for e in earns],
        "sale": [e[1] for e in earns],
        "store": [e[2] for e in earns],
        "points": [e[3] for e in earns],
        "at": [e[4] for e in earns],
        "expires": [points_policy.expires_at(e[4]) for e in earns],
    }
    await connection.execute(
        text(
            "INSERT INTO points_entry (entry_id, member_id, kind, points, sale_id, store_id, recorded_at) "
            "SELECT entry, member, 'earn', points, sale, store, at FROM unnest(CAST(:entry AS bigint[]), "
            "CAST(:member AS text[]), CAST(:points AS bigint[]), CAST(:sale AS text[]), CAST(:store AS text[]), "
            "CAST(:at AS timestamptz[])) AS v(entry, member, points, sale, store, at)"
        ),
        columns,
    )
    await connection.execute(
        text(
            "INSERT INTO points_lot (lot_id, member_id, entry_id, points, remaining, earned_at, expires_at, sale_id) "
            "SELECT lot, member, entry, points, points, at, expires, sale FROM unnest(CAST(:lot AS bigint[]), "
            "CAST(:member AS text[]), CAST(:entry AS bigint[]), CAST(:points AS bigint[]), "
            "CAST(:at AS timestamptz[]), CAST(:expires AS timestamptz[]), CAST(:sale AS text[])) "
            "AS v(lot, member, entry, points, at, expires, sale)"
        ),
        columns,
    )
    await connection.execute(
        text(
            "UPDATE sale_fact s SET lot_id = v.lot FROM unnest(CAST(:sale AS text[]), CAST(:lot AS bigint[])) "
            "AS v(sale, lot) WHERE s.sale_id = v.sale"
        ),
        columns,
    )
