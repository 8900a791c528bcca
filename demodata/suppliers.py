"""Suppliers: specialists per department, or general distributors when there are few of them.

Every SKU has exactly one supplier. With fewer suppliers than departments each supplier
covers several departments (a distributor); with more, departments are shared and their
SKUs dealt out in turn. A scale that would leave a supplier without SKUs is refused.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from demodata._random import substream
from demodata.catalogue import in_brackets
from demodata.model import SettlementMode, Sku, Supplier

_SPECIALISTS = {
    "C01": ("上海江桥蔬果批发有限公司", "寿光绿源蔬菜产业集团", "佳沃鑫荣懋果业有限公司"),
    "C02": ("双汇冷鲜肉供应链有限公司", "国联水产集团股份有限公司", "圣农食品发展有限公司"),
    "C03": ("光明乳业股份有限公司", "伊利乳品华东分销中心", "桃李面包华东有限公司"),
    "C04": ("农夫山泉华东销售有限公司", "华润雪花啤酒华东区公司", "太古可口可乐华东饮料有限公司"),
    "C05": ("三只松鼠股份有限公司", "良品铺子华东分公司", "旺旺食品华东销售有限公司"),
    "C06": ("益海嘉里金龙鱼粮油食品有限公司", "海天味业华东销售有限公司", "中粮福临门食品营销有限公司"),
    "C07": ("思念食品华东销售有限公司", "三全食品股份有限公司", "和路雪冷冻食品有限公司"),
    "C08": ("维达纸业华东销售有限公司", "蓝月亮华东日化有限公司", "立白科技集团华东公司"),
    "C09": ("宝洁华东分销有限公司", "上海家化联合股份有限公司", "云南白药健康产品华东公司"),
}
_DISTRIBUTORS = (
    "上海联华商贸有限公司",
    "杭州华东百货供应链有限公司",
    "苏州惠众商贸有限公司",
    "南京苏果供应链有限公司",
    "浙江物产中大商贸有限公司",
    "江苏恒通食品贸易有限公司",
)
_FRESH_DEPARTMENTS = {"C01", "C02", "C03", "C07"}  # chilled and frozen goods come daily


def supplier_id(number: int) -> str:
    """``SUP001`` for the first supplier."""
    return f"SUP{number:03d}"


def assign_suppliers(
    seed: int, supplier_count: int, departments: tuple[str, ...], skus: tuple[Sku, ...]
) -> tuple[tuple[Supplier, ...], tuple[Sku, ...]]:
    """The suppliers, and the SKUs with ``supplier_id`` filled in."""
    rng = substream(seed, "suppliers")
    coverage: list[list[str]] = [[] for _ in range(supplier_count)]
    if supplier_count <= len(departments):
        for position, department in enumerate(departments):
            coverage[position % supplier_count].append(department)
    else:
        for number in range(supplier_count):
            coverage[number].append(departments[number % len(departments)])

    serving = {
        department: [n for n in range(supplier_count) if department in coverage[n]] for department in departments
    }
    dealt = dict.fromkeys(departments, 0)
    assigned: list[Sku] = []
    supplied: list[list[str]] = [[] for _ in range(supplier_count)]
    for sku in skus:
        department = sku.category_code[:3]
        number = serving[department][dealt[department] % len(serving[department])]
        dealt[department] += 1
        supplied[number].append(sku.sku_code)
        assigned.append(dataclasses.replace(sku, supplier_id=supplier_id(number + 1)))

    empty = [supplier_id(number + 1) for number, codes in enumerate(supplied) if not codes]
    if empty:
        raise ValueError(f"suppliers {', '.join(empty)} would supply nothing: raise sku_count or lower supplier_count")
    modes = [SettlementMode.CONSIGNMENT if rng.random() < 0.35 else SettlementMode.PURCHASE for _ in coverage]
    if supplier_count >= 2 and len(set(modes)) == 1:  # the demo should show both ways of settling
        modes[-1] = SettlementMode.PURCHASE if modes[0] is SettlementMode.CONSIGNMENT else SettlementMode.CONSIGNMENT
    used_names: set[str] = set()
    suppliers = []
    for number, departments_served in enumerate(coverage):
        if len(departments_served) == 1:
            pool = _SPECIALISTS[departments_served[0]]
            name = pool[(number // len(departments)) % len(pool)]
        else:
            name = _DISTRIBUTORS[number % len(_DISTRIBUTORS)]
        base_name, copy = name, 2
        while name in used_names:
            name = base_name + in_brackets(f"第{copy}分公司")
            copy += 1
        used_names.add(name)
        fresh = bool(_FRESH_DEPARTMENTS.intersection(departments_served))
        mode = modes[number]
        suppliers.append(
            Supplier(
                supplier_id=supplier_id(number + 1),
                name=name,
                settlement_mode=mode,
                commission_rate=Decimal(rng.choice((15, 18, 20, 22, 25))).scaleb(-2)
                if mode is SettlementMode.CONSIGNMENT
                else None,
                lead_time_days=rng.randint(1, 2) if fresh else rng.randint(3, 7),
                payment_terms_days=rng.choice((30, 45, 60)),
                category_codes=tuple(departments_served),
                sku_codes=tuple(supplied[number]),
            )
        )
    return tuple(suppliers), tuple(assigned)
