"""Member: members, identities (keyed hash + ciphertext), tags, consent with history, merges, audits.

Personal data lives only in the *_sealed columns (AES-256-GCM, see adapters/personal_data.py);
identities are found by their keyed hash. Nothing here holds personal data in clear.

Revision ID: member_0001
Revises:
Create Date: 2026-11-24
"""

from alembic import op

revision = "member_0001"
down_revision = None
branch_labels = ("member",)
depends_on = "kit_0001"


SCHEMA = """
        -- Member ids are M + at least 7 digits, from this sequence (the demo loader moves it past its ids).
        CREATE SEQUENCE member_number START 1;
        CREATE TABLE member (
            member_id text PRIMARY KEY CHECK (member_id ~ '^M[0-9]{7,12}$'),
            status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'merged', 'erased')),
            merged_into text REFERENCES member (member_id),
            registered_at timestamptz NOT NULL,
            registration_channel text NOT NULL CHECK (registration_channel IN ('store', 'app', 'mini_program')),
            home_store_id text,
            name_sealed bytea,
            birthday_sealed bytea,
            address_sealed bytea,
            gender text CHECK (gender IN ('female', 'male')),
            preferences jsonb NOT NULL DEFAULT '{}',
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            erased_at timestamptz,
            CHECK ((status = 'merged') = (merged_into IS NOT NULL))
        );
        CREATE INDEX member_merged_into ON member (merged_into) WHERE merged_into IS NOT NULL;
        CREATE INDEX member_registered ON member (registered_at);
        -- One row per identity: found by its keyed hash, its value kept only sealed.
        CREATE TABLE member_identity (
            identity_hash bytea PRIMARY KEY,
            member_id text NOT NULL REFERENCES member (member_id),
            identity_type text NOT NULL CHECK (
                identity_type IN ('phone', 'wechat_unionid', 'wechat_openid', 'app_user_id', 'pos_card', 'email')
            ),
            value_sealed bytea NOT NULL,
            linked_at timestamptz NOT NULL,
            linked_by text NOT NULL DEFAULT ''
        );
        CREATE INDEX member_identity_by_member ON member_identity (member_id);
        CREATE TABLE member_tag (
            member_id text NOT NULL REFERENCES member (member_id),
            tag text NOT NULL,
            added_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (member_id, tag)
        );
        CREATE TABLE member_consent (
            member_id text NOT NULL REFERENCES member (member_id),
            channel text NOT NULL CHECK (channel IN ('sms', 'wechat', 'app_push', 'email')),
            granted boolean NOT NULL,
            updated_at timestamptz NOT NULL,
            source text NOT NULL DEFAULT '',
            PRIMARY KEY (member_id, channel)
        );
        -- Every consent decision ever recorded (PIPL: when and through whom consent was given or withdrawn).
        CREATE TABLE consent_event (
            id bigserial PRIMARY KEY,
            member_id text NOT NULL REFERENCES member (member_id),
            channel text NOT NULL,
            granted boolean NOT NULL,
            source text NOT NULL DEFAULT '',
            recorded_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX consent_event_by_member ON consent_event (member_id, id);
        -- A merge and exactly what moved with it, so that it can be undone exactly.
        CREATE TABLE member_merge (
            merge_id uuid PRIMARY KEY,
            survivor_id text NOT NULL REFERENCES member (member_id),
            absorbed_id text NOT NULL REFERENCES member (member_id),
            rule text NOT NULL CHECK (rule IN ('chosen', 'older', 'more_complete')),
            status text NOT NULL DEFAULT 'applied' CHECK (status IN ('applied', 'undone')),
            moved jsonb NOT NULL,
            merged_at timestamptz NOT NULL,
            merged_by text NOT NULL DEFAULT '',
            undone_at timestamptz,
            undone_by text NOT NULL DEFAULT '',
            CHECK (survivor_id <> absorbed_id)
        );
        CREATE INDEX member_merge_by_survivor ON member_merge (survivor_id);
        CREATE INDEX member_merge_by_absorbed ON member_merge (absorbed_id);
        -- Who saw a member's personal data in clear, when and why (never the data itself).
        CREATE TABLE personal_data_access (
            id bigserial PRIMARY KEY,
            member_id text NOT NULL,
            accessed_at timestamptz NOT NULL DEFAULT now(),
            client_id text NOT NULL,
            client_kind text NOT NULL DEFAULT '',
            staff_role text NOT NULL DEFAULT '',
            store_id text NOT NULL DEFAULT '',
            purpose text NOT NULL,
            fields text[] NOT NULL
        );
        CREATE INDEX personal_data_access_by_member ON personal_data_access (member_id, accessed_at);
        -- Erasures performed (no personal data: who asked for it and under which reference).
        CREATE TABLE member_erasure (
            member_id text PRIMARY KEY REFERENCES member (member_id),
            erased_at timestamptz NOT NULL,
            erased_by text NOT NULL,
            reason text NOT NULL DEFAULT ''
        )
        """


def upgrade() -> None:
    # asyncpg runs one statement per call.
    for statement in SCHEMA.split(";"):
        if statement.strip():
            op.execute(statement)


def downgrade() -> None:
    op.execute(
        "DROP TABLE member_erasure, personal_data_access, member_merge, consent_event, member_consent, member_tag, "
        "member_identity, member"
    )
    op.execute("DROP SEQUENCE member_number")
