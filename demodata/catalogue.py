"""The item catalogue: a two-level category tree and SKUs built from product templates.

SKUs are combinations of brand, product and pack size taken from templates per leaf
category, so names, prices and barcodes read like a real Chinese supermarket's shelf.
When a scale asks for more SKUs than the templates hold, further SKUs are variants
(new packaging, multi-packs, other origins of the same produce).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from demodata._random import substream
from demodata.codes import ean13_check_digit
from demodata.model import Category, Occasion, Sku, Unit


@dataclass(frozen=True, slots=True)
class _Spec:
    label: str
    price_factor: float
    unit: Unit
    sold_by_weight: bool = False


@dataclass(frozen=True, slots=True)
class _Product:
    name: str
    reference_price: float  # yuan for the leaf's first pack size (per kg for loose items)
    brand: str = ""
    shelf_life_days: int | None = 0  # 0: the leaf's default
    occasion: Occasion | None = None


@dataclass(frozen=True, slots=True)
class _Leaf:
    code: str
    name: str
    name_en: str
    velocity: float  # relative unit sales of one SKU
    margin: tuple[float, float]
    shelf_life_days: int | None
    brands: tuple[str, ...]  # crossed with every product; empty: each product names its brand
    products: tuple[_Product, ...]
    specs: tuple[_Spec, ...]


@dataclass(frozen=True, slots=True)
class _Department:
    code: str
    name: str
    name_en: str
    leaves: tuple[_Leaf, ...]


P = _Product
LOOSE = _Spec("散称", 1.0, Unit.KG, sold_by_weight=True)
STANDARD = _Spec("标准装", 1.0, Unit.PIECE)

_DEPARTMENTS: tuple[_Department, ...] = (
    _Department(
        "C01",
        "新鲜果蔬",
        "Fresh produce",
        (
            _Leaf(
                "C0101",
                "蔬菜",
                "Vegetables",
                2.6,
                (0.25, 0.38),
                5,
                ("",),
                (
                    P("西红柿", 7.98),
                    P("黄瓜", 5.98),
                    P("土豆", 3.98),
                    P("大白菜", 2.58),
                    P("菠菜", 8.98),
                    P("西兰花", 11.8),
                    P("胡萝卜", 3.98),
                    P("青椒", 7.58),
                    P("茄子", 6.98),
                    P("洋葱", 3.58),
                    P("生菜", 9.8),
                    P("芹菜", 5.98),
                    P("铁棍山药", 12.8, shelf_life_days=14),
                    P("香菇", 19.8, shelf_life_days=7),
                ),
                (LOOSE, _Spec("500g/盒", 0.62, Unit.PIECE), _Spec("有机 300g", 0.75, Unit.PIECE)),
            ),
            _Leaf(
                "C0102",
                "水果",
                "Fruit",
                2.4,
                (0.25, 0.40),
                10,
                ("",),
                (
                    P("红富士苹果", 12.8, shelf_life_days=30),
                    P("香蕉", 6.98, shelf_life_days=6),
                    P("赣南脐橙", 9.98),
                    P("阳光玫瑰葡萄", 29.8),
                    P("麒麟西瓜", 3.98),
                    P("库尔勒香梨", 11.8),
                    P("徐香猕猴桃", 16.8),
                    P("红心火龙果", 12.8),
                    P("小台农芒果", 15.8),
                    P("丹东草莓", 49.8, shelf_life_days=4),
                    P("云南蓝莓", 89.8, shelf_life_days=7),
                ),
                (LOOSE, _Spec("精品盒装 1kg", 1.15, Unit.PIECE), _Spec("礼盒 2.5kg", 3.2, Unit.BOX)),
            ),
        ),
    ),
    _Department(
        "C02",
        "肉禽水产",
        "Meat, poultry & seafood",
        (
            _Leaf(
                "C0201",
                "猪肉",
                "Pork",
                1.8,
                (0.18, 0.28),
                3,
                ("", "双汇", "雨润", "金锣"),
                (
                    P("五花肉", 32.8),
                    P("猪里脊", 36.8),
                    P("精品肋排", 45.8),
                    P("前腿肉", 28.8),
                    P("猪蹄", 29.8),
                    P("猪肉馅", 26.8),
                ),
                (LOOSE, _Spec("400g/盒", 0.45, Unit.PIECE), _Spec("冷冻 1kg", 0.9, Unit.PIECE)),
            ),
            _Leaf(
                "C0202",
                "禽肉牛羊",
                "Poultry, beef & lamb",
                1.2,
                (0.18, 0.30),
                3,
                ("", "圣农", "正大", "恒都"),
                (
                    P("鸡胸肉", 19.8),
                    P("鸡翅中", 49.8),
                    P("三黄鸡", 25.8),
                    P("牛腱子", 89.8),
                    P("肥牛卷", 69.8),
                    P("羊肉卷", 79.8),
                ),
                (LOOSE, _Spec("500g/袋", 0.55, Unit.PIECE), _Spec("冷冻 1kg/袋", 1.0, Unit.PIECE)),
            ),
            _Leaf(
                "C0203",
                "水产海鲜",
                "Fish & seafood",
                0.9,
                (0.22, 0.35),
                2,
                ("", "国联", "獐子岛"),
                (
                    P("鲈鱼", 39.8),
                    P("基围虾", 79.8),
                    P("舟山带鱼", 45.8),
                    P("三文鱼", 169.0),
                    P("花蛤", 19.8),
                    P("鱿鱼", 39.8),
                ),
                (LOOSE, _Spec("400g/盒", 0.45, Unit.PIECE), _Spec("冷冻 1kg", 0.85, Unit.PIECE)),
            ),
        ),
    ),
    _Department(
        "C03",
        "乳品烘焙",
        "Dairy & bakery",
        (
            _Leaf(
                "C0301",
                "牛奶",
                "Milk",
                1.6,
                (0.15, 0.24),
                180,
                ("伊利", "蒙牛", "光明", "君乐宝"),
                (
                    P("纯牛奶", 45.0),
                    P("低脂牛奶", 48.0),
                    P("高钙牛奶", 50.0),
                    P("鲜牛奶", 60.0, shelf_life_days=7),
                    P("儿童成长牛奶", 55.0),
                ),
                (_Spec("250ml*12盒", 1.0, Unit.BOX), _Spec("250ml*24盒", 1.9, Unit.BOX), _Spec("1L", 0.35, Unit.PIECE)),
            ),
            _Leaf(
                "C0302",
                "酸奶",
                "Yoghurt",
                1.3,
                (0.18, 0.28),
                21,
                ("安慕希", "纯甄", "莫斯利安", "简爱", "卡士"),
                (
                    P("原味酸奶", 59.9),
                    P("草莓味酸奶", 62.0),
                    P("希腊式酸奶", 69.0),
                    P("低糖酸奶", 64.0),
                ),
                (
                    _Spec("200g*10盒", 1.0, Unit.BOX),
                    _Spec("230g", 0.13, Unit.PIECE),
                    _Spec("1kg 家庭装", 0.32, Unit.PIECE),
                ),
            ),
            _Leaf(
                "C0303",
                "面包糕点",
                "Bakery",
                1.2,
                (0.25, 0.40),
                7,
                ("桃李", "宾堡", "曼可顿", "达利园"),
                (
                    P("吐司面包", 9.8),
                    P("醇熟切片面包", 8.5),
                    P("全麦面包", 12.8),
                    P("蛋黄派", 15.8, shelf_life_days=120),
                    P("瑞士卷", 12.8, shelf_life_days=30),
                ),
                (STANDARD, _Spec("家庭装", 1.8, Unit.PIECE)),
            ),
        ),
    ),
    _Department(
        "C04",
        "酒水饮料",
        "Beverages",
        (
            _Leaf(
                "C0401",
                "饮用水",
                "Water",
                2.0,
                (0.20, 0.32),
                540,
                ("农夫山泉", "怡宝", "百岁山", "景田"),
                (
                    P("饮用天然水", 2.0),
                    P("纯净水", 1.8),
                    P("天然矿泉水", 3.0),
                ),
                (
                    _Spec("550ml", 1.0, Unit.PIECE),
                    _Spec("1.5L", 2.2, Unit.PIECE),
                    _Spec("550ml*24瓶", 19.0, Unit.BOX),
                    _Spec("5L", 4.8, Unit.PIECE),
                ),
            ),
            _Leaf(
                "C0402",
                "碳酸果汁",
                "Soft drinks & juice",
                1.6,
                (0.20, 0.32),
                365,
                (),
                (
                    P("可乐", 3.0, "百事"),
                    P("零度可乐", 3.0, "可口可乐"),
                    P("柠檬味汽水", 3.0, "雪碧"),
                    P("橙味汽水", 3.0, "芬达"),
                    P("白桃苏打气泡水", 5.5, "元气森林"),
                    P("果粒橙", 4.5, "美汁源"),
                    P("混合果蔬汁", 5.0, "农夫果园"),
                    P("100%橙汁", 9.9, "汇源"),
                ),
                (_Spec("500ml", 1.0, Unit.PIECE), _Spec("2L", 2.6, Unit.PIECE), _Spec("330ml*24罐", 14.0, Unit.BOX)),
            ),
            _Leaf(
                "C0403",
                "茶饮咖啡",
                "Tea & coffee drinks",
                1.4,
                (0.22, 0.34),
                365,
                (),
                (
                    P("冰红茶", 3.0, "康师傅"),
                    P("绿茶", 3.0, "统一"),
                    P("茉莉花茶", 5.0, "东方树叶"),
                    P("乌龙茶", 5.5, "三得利"),
                    P("丝滑拿铁", 6.5, "雀巢"),
                    P("茶π柠檬红茶", 5.0, "农夫山泉"),
                    P("凉茶", 4.0, "王老吉"),
                ),
                (_Spec("500ml", 1.0, Unit.PIECE), _Spec("500ml*15瓶", 12.5, Unit.BOX)),
            ),
            _Leaf(
                "C0404",
                "啤酒",
                "Beer",
                1.0,
                (0.18, 0.28),
                270,
                (),
                (
                    P("经典啤酒", 6.5, "青岛"),
                    P("勇闯天涯", 5.0, "雪花"),
                    P("啤酒", 7.5, "百威"),
                    P("冰纯啤酒", 4.5, "哈尔滨"),
                    P("啤酒", 6.0, "乌苏"),
                ),
                (_Spec("500ml听装", 1.0, Unit.PIECE), _Spec("500ml*12听", 11.0, Unit.BOX)),
            ),
            _Leaf(
                "C0405",
                "白酒",
                "Baijiu",
                0.25,
                (0.20, 0.35),
                None,
                (),
                (
                    P("陈酿二锅头", 22.0, "牛栏山"),
                    P("海之蓝", 139.0, "洋河"),
                    P("年份原浆", 158.0, "古井贡酒"),
                    P("头曲", 89.0, "泸州老窖"),
                    P("黄盖玻汾", 59.0, "汾酒"),
                ),
                (_Spec("500ml", 1.0, Unit.PIECE), _Spec("500ml*2 礼盒", 2.1, Unit.BOX)),
            ),
        ),
    ),
    _Department(
        "C05",
        "休闲零食",
        "Snacks",
        (
            _Leaf(
                "C0501",
                "饼干膨化",
                "Biscuits & crisps",
                1.3,
                (0.25, 0.38),
                270,
                (),
                (
                    P("夹心饼干", 9.9, "奥利奥"),
                    P("原味薯片", 7.5, "乐事"),
                    P("雪饼", 8.9, "旺旺"),
                    P("巧克力派", 13.9, "好丽友"),
                    P("3+2苏打夹心饼干", 7.9, "康师傅"),
                    P("早餐饼", 12.9, "嘉士利"),
                ),
                (STANDARD, _Spec("家庭分享装", 2.6, Unit.PIECE)),
            ),
            _Leaf(
                "C0502",
                "坚果炒货",
                "Nuts & seeds",
                0.7,
                (0.28, 0.42),
                240,
                (),
                (
                    P("每日坚果", 39.9, "三只松鼠"),
                    P("香瓜子", 12.9, "洽洽"),
                    P("碧根果", 29.9, "良品铺子"),
                    P("夏威夷果", 32.9, "百草味"),
                    P("开心果", 35.9, "来伊份"),
                ),
                (STANDARD, _Spec("750g 礼盒", 3.2, Unit.BOX)),
            ),
            _Leaf(
                "C0503",
                "糖果巧克力",
                "Sweets & chocolate",
                0.8,
                (0.28, 0.42),
                365,
                (),
                (
                    P("丝滑牛奶巧克力", 19.9, "德芙"),
                    P("花生夹心巧克力", 15.9, "士力架"),
                    P("奶糖", 16.9, "大白兔"),
                    P("棒棒糖", 12.9, "阿尔卑斯"),
                    P("榛果威化巧克力", 39.9, "费列罗"),
                ),
                (STANDARD, _Spec("分享装", 2.4, Unit.PIECE)),
            ),
            _Leaf(
                "C0504",
                "节令食品",
                "Festival food",
                2.0,
                (0.25, 0.40),
                60,
                (),
                (
                    P("广式月饼", 68.0, "杏花楼", occasion=Occasion.MID_AUTUMN),
                    P("流心奶黄月饼", 128.0, "美心", occasion=Occasion.MID_AUTUMN),
                    P("鲜肉粽", 39.8, "五芳斋", shelf_life_days=180, occasion=Occasion.DRAGON_BOAT),
                    P("蛋黄肉粽", 45.0, "诸老大", shelf_life_days=180, occasion=Occasion.DRAGON_BOAT),
                    P("黑芝麻汤圆", 12.8, "思念", shelf_life_days=365, occasion=Occasion.LANTERN_FESTIVAL),
                    P("艾草青团", 25.8, "沈大成", shelf_life_days=10, occasion=Occasion.QINGMING),
                ),
                (STANDARD, _Spec("礼盒装", 2.5, Unit.BOX)),
            ),
        ),
    ),
    _Department(
        "C06",
        "粮油调味",
        "Rice, oil & condiments",
        (
            _Leaf(
                "C0601",
                "大米面粉",
                "Rice & flour",
                0.8,
                (0.12, 0.22),
                365,
                (),
                (
                    P("东北大米", 39.9, "金龙鱼"),
                    P("泰国香米", 59.9, "福临门"),
                    P("五常大米", 89.9, "十月稻田"),
                    P("高筋小麦粉", 29.9, "香满园"),
                ),
                (_Spec("5kg", 1.0, Unit.PIECE), _Spec("2.5kg", 0.55, Unit.PIECE), _Spec("10kg", 1.9, Unit.PIECE)),
            ),
            _Leaf(
                "C0602",
                "食用油",
                "Cooking oil",
                0.6,
                (0.12, 0.20),
                540,
                (),
                (
                    P("1:1:1调和油", 69.9, "金龙鱼"),
                    P("5S压榨花生油", 159.0, "鲁花"),
                    P("大豆油", 59.9, "福临门"),
                    P("葵花籽油", 89.9, "多力"),
                ),
                (_Spec("5L", 1.0, Unit.PIECE), _Spec("1.8L", 0.4, Unit.PIECE)),
            ),
            _Leaf(
                "C0603",
                "调味品",
                "Condiments",
                1.0,
                (0.22, 0.35),
                540,
                (),
                (
                    P("金标生抽", 9.9, "海天"),
                    P("旧庄蚝油", 12.9, "李锦记"),
                    P("风味豆豉", 11.5, "老干妈"),
                    P("镇江香醋", 7.9, "恒顺"),
                    P("鸡精", 9.9, "太太乐"),
                    P("精制食盐", 2.5, "中盐"),
                ),
                (STANDARD, _Spec("两件组合装", 1.9, Unit.BOX)),
            ),
            _Leaf(
                "C0604",
                "方便速食",
                "Instant food",
                1.1,
                (0.20, 0.32),
                180,
                (),
                (
                    P("红烧牛肉面", 3.5, "康师傅"),
                    P("老坛酸菜牛肉面", 3.5, "统一"),
                    P("汤好喝老母鸡汤面", 4.5, "白象"),
                    P("麻辣牛肉自热火锅", 29.9, "自嗨锅"),
                    P("螺蛳粉", 13.9, "好欢螺"),
                ),
                (_Spec("单包", 1.0, Unit.PIECE), _Spec("5连包", 4.6, Unit.BOX)),
            ),
        ),
    ),
    _Department(
        "C07",
        "冷冻食品",
        "Frozen food",
        (
            _Leaf(
                "C0701",
                "速冻面点",
                "Dumplings & buns",
                0.9,
                (0.22, 0.34),
                365,
                (),
                (
                    P("猪肉白菜水饺", 14.9, "思念"),
                    P("玉米猪肉水饺", 24.9, "湾仔码头"),
                    P("灌汤小笼包", 15.9, "三全"),
                    P("王饺子", 29.9, "必品阁"),
                    P("原味手抓饼", 16.9, "安井"),
                ),
                (_Spec("500g", 1.0, Unit.PIECE), _Spec("1kg", 1.85, Unit.PIECE)),
            ),
            _Leaf(
                "C0702",
                "冰淇淋",
                "Ice cream",
                0.9,
                (0.25, 0.40),
                540,
                (),
                (
                    P("巧乐兹", 4.0, "伊利"),
                    P("随变", 3.5, "蒙牛"),
                    P("可爱多", 5.0, "和路雪"),
                    P("香草冰淇淋", 9.0, "八喜"),
                    P("丝绒可可雪糕", 15.0, "钟薛高"),
                ),
                (_Spec("单支", 1.0, Unit.PIECE), _Spec("6支装", 5.2, Unit.BOX)),
            ),
        ),
    ),
    _Department(
        "C08",
        "日用家清",
        "Household",
        (
            _Leaf(
                "C0801",
                "纸品",
                "Paper goods",
                0.9,
                (0.22, 0.35),
                None,
                (),
                (
                    P("抽纸 3层100抽*6包", 19.9, "维达"),
                    P("卷纸 4层*10卷", 29.9, "清风"),
                    P("湿巾 80片", 9.9, "心相印"),
                    P("手帕纸 10包", 12.9, "洁柔"),
                ),
                (STANDARD, _Spec("超值囤货装", 2.8, Unit.BOX)),
            ),
            _Leaf(
                "C0802",
                "洗衣清洁",
                "Laundry & cleaning",
                0.6,
                (0.28, 0.42),
                None,
                (),
                (
                    P("深层洁净洗衣液", 49.9, "蓝月亮"),
                    P("洗洁精", 12.9, "立白"),
                    P("洗衣粉", 29.9, "奥妙"),
                    P("厨房重油污净", 19.9, "威猛先生"),
                    P("洗衣凝珠", 39.9, "超能"),
                ),
                (STANDARD, _Spec("补充装", 0.7, Unit.PIECE), _Spec("家庭装", 1.9, Unit.PIECE)),
            ),
            _Leaf(
                "C0803",
                "厨房用品",
                "Kitchenware",
                0.35,
                (0.35, 0.50),
                None,
                (),
                (
                    P("保鲜膜", 15.9, "妙洁"),
                    P("加厚垃圾袋", 12.9, "美丽雅"),
                    P("竹筷10双", 19.9, "双枪"),
                    P("密封保鲜盒", 29.9, "茶花"),
                ),
                (STANDARD, _Spec("两件装", 1.9, Unit.BOX)),
            ),
        ),
    ),
    _Department(
        "C09",
        "个护美妆",
        "Personal care",
        (
            _Leaf(
                "C0901",
                "洗发沐浴",
                "Hair & body care",
                0.5,
                (0.30, 0.45),
                1095,
                (),
                (
                    P("去屑洗发水", 59.9, "海飞丝"),
                    P("氨基酸洗发露", 55.9, "潘婷"),
                    P("沐浴露", 39.9, "舒肤佳"),
                    P("花露水", 12.9, "六神"),
                    P("香氛沐浴乳", 45.9, "力士"),
                ),
                (STANDARD, _Spec("大容量装", 1.6, Unit.PIECE)),
            ),
            _Leaf(
                "C0902",
                "口腔护理",
                "Oral care",
                0.5,
                (0.30, 0.45),
                1095,
                (),
                (
                    P("牙膏", 29.9, "云南白药"),
                    P("牙膏", 12.9, "高露洁"),
                    P("牙膏", 13.9, "佳洁士"),
                    P("牙膏", 15.9, "黑人"),
                    P("软毛牙刷", 9.9, "舒客"),
                ),
                (STANDARD, _Spec("三支装", 2.6, Unit.BOX)),
            ),
            _Leaf(
                "C0903",
                "护肤",
                "Skin care",
                0.25,
                (0.35, 0.50),
                1095,
                (),
                (
                    P("SOD蜜", 15.9, "大宝"),
                    P("水能量保湿霜", 69.0, "百雀羚"),
                    P("补水面膜", 99.0, "自然堂"),
                    P("双抗精华", 259.0, "珀莱雅"),
                ),
                (STANDARD, _Spec("礼盒装", 2.2, Unit.BOX)),
            ),
        ),
    ),
)

LEAF_COUNT = sum(len(department.leaves) for department in _DEPARTMENTS)
_PACKAGED_VARIANTS = ("新包装", "量贩装", "尝鲜装", "组合装", "限定款", "升级款")
_ORIGINS = ("山东", "云南", "海南", "新疆", "本地", "有机", "甘肃", "福建")
_OWN_BRAND = ""  # retailer-packed produce carries the chain's own GS1 company prefix
PERISHABLE_SHELF_LIFE_DAYS = 30


def in_brackets(text: str) -> str:
    """``text`` in the full-width brackets Chinese product names use."""
    return f"\N{FULLWIDTH LEFT PARENTHESIS}{text}\N{FULLWIDTH RIGHT PARENTHESIS}"


@dataclass(frozen=True, slots=True)
class CatalogueDraft:
    """The catalogue before suppliers are assigned, with each SKU's hidden sales weight."""

    categories: tuple[Category, ...]
    departments: tuple[str, ...]
    skus: tuple[Sku, ...]  # supplier_id is still empty
    popularity: dict[str, float]


def _categories() -> tuple[Category, ...]:
    categories = []
    for department in _DEPARTMENTS:
        categories.append(Category(department.code, department.name, department.name_en, None, 1))
        categories.extend(
            Category(leaf.code, leaf.name, leaf.name_en, department.code, 2) for leaf in department.leaves
        )
    return tuple(categories)


def _retail_price(yuan: float) -> Decimal:
    """Snap a price to how Chinese supermarkets write them: 3.5, 12.8, 39.9, 168."""
    if yuan < 20:
        tenths = max(5, round(yuan * 10))
        return Decimal(tenths * 10).scaleb(-2)
    if yuan < 200:
        return Decimal(round(yuan) * 100 - 10).scaleb(-2)
    return Decimal(round(yuan) * 100).scaleb(-2)


def _allocate(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` in proportion to ``weights`` (largest remainder), at least one each."""
    shares = [max(1.0, total * weight / sum(weights)) for weight in weights]
    counts = [math.floor(share) for share in shares]
    by_remainder = sorted(range(len(weights)), key=lambda index: (counts[index] - shares[index], index))
    position = 0
    while sum(counts) < total:
        counts[by_remainder[position % len(counts)]] += 1
        position += 1
    while sum(counts) > total:  # only when the minimum of one pushed us over
        largest = max(range(len(counts)), key=lambda index: (counts[index], -index))
        counts[largest] -= 1
    return counts


def build_catalogue(seed: int, sku_count: int) -> CatalogueDraft:
    """``sku_count`` SKUs spread over the leaf categories in proportion to their templates."""
    rng = substream(seed, "catalogue")
    leaves = [leaf for department in _DEPARTMENTS for leaf in department.leaves]
    combinations: list[list[tuple[str, _Product, _Spec]]] = []
    for leaf in leaves:
        combos = [
            (brand, product, spec)
            for product in leaf.products
            for brand in (leaf.brands or (product.brand,))
            for spec in leaf.specs
            if not (spec.sold_by_weight and brand)  # loose goods are unbranded
        ]
        rng.shuffle(combos)
        combinations.append(combos)
    counts = _allocate(sku_count, [len(combos) for combos in combinations])

    brands = sorted({brand for combos in combinations for brand, _, _ in combos} | {_OWN_BRAND})
    company_codes = dict(zip(brands, rng.sample(range(10_000, 100_000), len(brands)), strict=True))
    next_item_reference = {brand: rng.randrange(100, 5_000) for brand in brands}
    next_plu = 10_001

    skus: list[Sku] = []
    popularity: dict[str, float] = {}
    for leaf, combos, count in zip(leaves, combinations, counts, strict=True):
        for position in range(count):
            brand, product, spec = combos[position % len(combos)]
            variant = position // len(combos)
            name = (
                product.name + in_brackets(spec.label)
                if spec.sold_by_weight
                else " ".join(part for part in (brand, product.name, spec.label) if part)
            )
            price_factor = spec.price_factor
            if variant:
                if spec.sold_by_weight:
                    name = f"{_ORIGINS[(variant - 1) % len(_ORIGINS)]}{name}"
                else:
                    label = _PACKAGED_VARIANTS[(variant - 1) % len(_PACKAGED_VARIANTS)]
                    round_suffix = "" if variant <= len(_PACKAGED_VARIANTS) else str(variant)
                    name += in_brackets(label + round_suffix)
                price_factor *= rng.uniform(0.9, 1.2)
            base_price = _retail_price(product.reference_price * price_factor * rng.uniform(0.92, 1.08))
            margin = rng.uniform(*leaf.margin)
            cost_fen = max(1, min(int(base_price * 100) - 1, math.floor(float(base_price) * (1 - margin) * 100)))
            if spec.sold_by_weight:
                body = f"20{next_plu:05d}00000"  # variable-measure: the scale prints weight into the zeros
                next_plu += 1
            else:
                owner = brand or _OWN_BRAND
                body = f"69{company_codes[owner]:05d}{next_item_reference[owner]:05d}"
                next_item_reference[owner] += 1
            shelf_life = leaf.shelf_life_days if product.shelf_life_days == 0 else product.shelf_life_days
            sku_code = f"SKU{len(skus) + 1:05d}"
            skus.append(
                Sku(
                    sku_code=sku_code,
                    name=name,
                    brand=brand,
                    specification=spec.label,
                    category_code=leaf.code,
                    barcode=body + ean13_check_digit(body),
                    unit=spec.unit,
                    cost_price=Decimal(cost_fen).scaleb(-2),
                    base_price=base_price,
                    supplier_id="",
                    shelf_life_days=shelf_life,
                    perishable=shelf_life is not None and shelf_life <= PERISHABLE_SHELF_LIFE_DAYS,
                    sold_by_weight=spec.sold_by_weight,
                    seasonal_occasion=product.occasion,
                )
            )
            # A few SKUs sell most units (long tail); big packs sell fewer units than small ones.
            popularity[sku_code] = leaf.velocity * rng.lognormvariate(0.0, 0.7) / math.sqrt(price_factor)
    return CatalogueDraft(_categories(), tuple(department.code for department in _DEPARTMENTS), tuple(skus), popularity)
