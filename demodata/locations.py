"""The chain's locations: stores across the Yangtze delta, one distribution centre, one online shop."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time, timedelta

from demodata._random import substream
from demodata.model import Channel, Location, LocationKind, OpeningHours, StoreFormat

CHAIN_NAME = "禾悦超市"


@dataclass(frozen=True, slots=True)
class _District:
    city: str
    district: str
    short_name: str
    region: str
    latitude: float
    longitude: float


# Ordered so the first few stores already span several cities; centres are approximate.
_DISTRICTS = (
    _District("上海", "徐汇区", "徐汇", "上海大区", 31.1885, 121.4365),
    _District("上海", "浦东新区", "浦东", "上海大区", 31.2215, 121.5440),
    _District("杭州", "西湖区", "西湖", "浙江大区", 30.2592, 120.1300),
    _District("上海", "静安区", "静安", "上海大区", 31.2290, 121.4480),
    _District("苏州", "工业园区", "园区", "江苏大区", 31.3170, 120.7230),
    _District("南京", "建邺区", "建邺", "江苏大区", 32.0040, 118.7310),
    _District("杭州", "滨江区", "滨江", "浙江大区", 30.2080, 120.2110),
    _District("上海", "闵行区", "闵行", "上海大区", 31.1130, 121.3820),
    _District("宁波", "鄞州区", "鄞州", "浙江大区", 29.8170, 121.5470),
    _District("上海", "杨浦区", "杨浦", "上海大区", 31.2590, 121.5260),
    _District("南京", "鼓楼区", "鼓楼", "江苏大区", 32.0660, 118.7700),
    _District("苏州", "姑苏区", "姑苏", "江苏大区", 31.3120, 120.6170),
    _District("杭州", "拱墅区", "拱墅", "浙江大区", 30.3190, 120.1420),
    _District("无锡", "梁溪区", "梁溪", "江苏大区", 31.5700, 120.3010),
    _District("上海", "长宁区", "长宁", "上海大区", 31.2200, 121.4240),
    _District("宁波", "海曙区", "海曙", "浙江大区", 29.8590, 121.5510),
    _District("南京", "秦淮区", "秦淮", "江苏大区", 32.0340, 118.7980),
    _District("杭州", "上城区", "上城", "浙江大区", 30.2420, 120.1690),
    _District("上海", "宝山区", "宝山", "上海大区", 31.4050, 121.4890),
    _District("苏州", "吴中区", "吴中", "江苏大区", 31.2700, 120.6320),
)
_ROADS = ("中山路", "人民路", "解放路", "建设路", "和平路", "长江路", "新华路", "文化路", "湖滨路", "滨江大道")
_ORDINALS = ("", "二", "三", "四", "五", "六", "七", "八", "九", "十")

_OPENING_HOURS = {
    StoreFormat.HYPERMARKET: OpeningHours(time(8, 0), time(22, 0)),
    StoreFormat.SUPERMARKET: OpeningHours(time(7, 30), time(22, 0)),
    StoreFormat.COMMUNITY: OpeningHours(time(7, 0), time(22, 30)),
}
_TERMINALS = {StoreFormat.HYPERMARKET: 8, StoreFormat.SUPERMARKET: 5, StoreFormat.COMMUNITY: 3}
_FORMAT_NAMES = {StoreFormat.HYPERMARKET: "购物广场", StoreFormat.SUPERMARKET: "", StoreFormat.COMMUNITY: "社区"}
STORE_FORMAT_TRAFFIC = {StoreFormat.HYPERMARKET: 1.6, StoreFormat.SUPERMARKET: 1.0, StoreFormat.COMMUNITY: 0.65}
"""Receipts per day relative to an average store."""

WAREHOUSE_ID = "W01"
ONLINE_ID = "ONLINE01"


def store_id(number: int) -> str:
    """``S001`` for the first store."""
    return f"S{number:03d}"


def build_locations(seed: int, store_count: int) -> tuple[tuple[Location, ...], Location, Location]:
    """The stores (``S001``...), the distribution centre ``W01`` and the online shop ``ONLINE01``."""
    rng = substream(seed, "locations")
    stores = []
    for index in range(store_count):
        district = _DISTRICTS[index % len(_DISTRICTS)]
        round_number = index // len(_DISTRICTS)
        draw = rng.random()
        store_format = (
            StoreFormat.HYPERMARKET if draw < 0.25 else StoreFormat.SUPERMARKET if draw < 0.7 else StoreFormat.COMMUNITY
        )
        if index == 0:
            store_format = StoreFormat.HYPERMARKET  # the flagship
        code = store_id(index + 1)
        ordinal = _ORDINALS[round_number] if round_number < len(_ORDINALS) else str(round_number + 1)
        channels = [Channel.STORE]
        if store_format is not StoreFormat.COMMUNITY:
            channels += [Channel.MINI_PROGRAM, Channel.CLICK_AND_COLLECT]
        elif rng.random() < 0.5:
            channels.append(Channel.CLICK_AND_COLLECT)
        stores.append(
            Location(
                location_id=code,
                kind=LocationKind.STORE,
                name=f"{CHAIN_NAME}{district.city}{district.short_name}{_FORMAT_NAMES[store_format]}{ordinal}店",
                city=district.city,
                district=district.district,
                address=f"{district.city}市{district.district}{rng.choice(_ROADS)}{rng.randint(1, 999)}号",
                region=district.region,
                latitude=round(district.latitude + rng.uniform(-0.02, 0.02), 6),
                longitude=round(district.longitude + rng.uniform(-0.02, 0.02), 6),
                opening_hours=_OPENING_HOURS[store_format],
                channels=tuple(channels),
                opened_on=date(2012, 1, 1) + timedelta(days=rng.randrange(7 * 365)),
                store_format=store_format,
                pos_terminal_ids=tuple(f"{code}-POS{n:02d}" for n in range(1, _TERMINALS[store_format] + 1)),
                fulfilled_from=None,
            )
        )
    warehouse = Location(
        location_id=WAREHOUSE_ID,
        kind=LocationKind.WAREHOUSE,
        name=f"{CHAIN_NAME}华东配送中心",
        city="苏州",
        district="昆山市",
        address="苏州市昆山市物流园区富士康路88号",
        region="华东物流",
        latitude=31.385,
        longitude=120.981,
        opening_hours=OpeningHours(time(5, 0), time(23, 0)),  # receiving and dispatch hours
        channels=(),
        opened_on=date(2011, 6, 1),
        store_format=None,
        pos_terminal_ids=(),
        fulfilled_from=None,
    )
    online = Location(
        location_id=ONLINE_ID,
        kind=LocationKind.ONLINE,
        name=f"{CHAIN_NAME}到家线上商城",
        city="上海",
        district="浦东新区",
        address="上海市浦东新区张江高科技园区总部",
        region="线上",
        latitude=31.2040,
        longitude=121.5900,
        opening_hours=None,
        channels=(Channel.ONLINE, Channel.MINI_PROGRAM),
        opened_on=date(2018, 3, 1),
        store_format=None,
        pos_terminal_ids=(),
        fulfilled_from=WAREHOUSE_ID,
    )
    return tuple(stores), warehouse, online
