"""`python -m services.member.reencrypt`: re-seal personal data under the current data key.

Run after putting a new key first in MEMBER_DATA_KEYS; when it reports 0 rows, the old key
can be removed. Prints counts only, never a value.
"""

from __future__ import annotations

import asyncio
import sys

from servicekit.db import create_engine, units_of_work
from servicekit.logs import configure_logging
from servicekit.settings import SettingsError, load_settings
from services.member.adapters.personal_data import DataKeyring, PersonalDataCodec
from services.member.service_layer.key_rotation import reseal_with_current_key
from services.member.settings import MemberSettings


async def run(settings: MemberSettings) -> int:
    engine = create_engine(settings.database_url, pool_size=2, max_overflow=0, application_name="member-reencrypt")
    try:
        codec = PersonalDataCodec(DataKeyring(settings.data_keys))
        report = await reseal_with_current_key(units_of_work(engine), codec)
    finally:
        await engine.dispose()
    print(
        f"re-sealed under key {codec.keyring.current_key_id}: {report.members} members, {report.identities} identities"
    )
    return 0


def main() -> int:
    try:
        settings = load_settings(MemberSettings)
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging("member-reencrypt", settings.log_level)
    return asyncio.run(run(settings))


if __name__ == "__main__":
    sys.exit(main())
