"""Deterministic demo residents: names, resident ids, addresses, phones and insurance.

Everything is drawn from one `random.Random(seed)`, so a seed and a `today` give the same
people on every machine and every run. The tables below are shaped to look like the
patients of a tertiary hospital in Hangzhou: mostly Zhejiang residents, older than the
general population, insured mostly under the employee (310) or resident (390) scheme.
The weights are demo assumptions, not statistics to quote. One simplification: a resident
id's address code is the county the person lives in now, where a real one keeps the code
of the place (and GB/T 2260 edition) where it was first issued.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Generic, Literal, TypeVar

__all__ = [
    "INSURANCE_SCHEMES",
    "Insurance",
    "Person",
    "is_valid_resident_id",
    "people",
    "resident_id",
]

Sex = Literal["male", "female"]
T = TypeVar("T")

# National insurance platform insutype codes (identity.md) -> (Chinese, English).
INSURANCE_SCHEMES: dict[str, tuple[str, str]] = {
    "310": ("职工基本医疗保险", "Employee basic medical insurance (UEBMI)"),
    "320": ("公务员医疗补助", "Civil-servant medical subsidy"),
    "330": ("大额医疗费用补助", "Large-amount medical expense subsidy for employees"),
    "390": ("城乡居民基本医疗保险", "Urban-rural resident basic medical insurance (URRBMI)"),
    "392": ("城乡居民大病医疗保险", "Resident critical-illness insurance"),
    "410": ("长期照护保险", "Long-term care insurance"),
    "510": ("生育保险", "Maternity insurance"),
}


@dataclass(frozen=True, slots=True)
class Insurance:
    """A person's insurance scheme and social security card.

    `card_number` has the shape printed on a social security card: one capital letter and
    eight digits, e.g. "A12345678" (the shape is unverified; it is unique within one run).
    """

    insutype: str
    display_zh: str
    display_en: str
    card_number: str


@dataclass(frozen=True, slots=True)
class Person:
    """A demo resident. Names are written family first without a space (张伟)."""

    family: str
    given: str
    family_pinyin: str
    given_pinyin: str
    gender: Sex
    birth_date: date
    resident_id: str
    phone: str
    province: str
    city: str
    district: str
    address_code: str
    line: str
    insurance: Insurance | None

    @property
    def text(self) -> str:
        return self.family + self.given


# --- Resident identity number (GB 11643-1999) -------------------------------------------

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


def _check_char(body: str) -> str:
    return _CHECK[sum(int(d) * w for d, w in zip(body, _WEIGHTS, strict=True)) % 11]


def resident_id(address_code: str, birth: date, sequence: int) -> str:
    """The 18-character number for an address code, a birth date and a 3-digit sequence.

    The sequence's parity carries the sex (odd male, even female); choosing it is the
    caller's business.
    """
    if len(address_code) != 6 or not address_code.isdigit():
        raise ValueError(f"address code must be 6 digits: {address_code!r}")
    if not 0 <= sequence <= 999:
        raise ValueError(f"sequence must be 0..999: {sequence}")
    body = f"{address_code}{birth:%Y%m%d}{sequence:03d}"
    return body + _check_char(body)


def is_valid_resident_id(value: str) -> bool:
    """Length, digits, a real birth date and the check character; "X" must be upper case.

    The address code is not checked against GB/T 2260: codes change and old numbers stay
    valid (identity.md).
    """
    if len(value) != 18 or not value[:17].isascii() or not value[:17].isdigit():
        return False
    try:
        date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    return value[17] == _check_char(value[:17])


# --- Weighted choice --------------------------------------------------------------------


class _Weighted(Generic[T]):
    """Items with weights; one `random()` and a bisect per pick (random.choices is slower
    because it rebuilds its cumulative weights on every call)."""

    __slots__ = ("_cumulative", "_items", "_total")

    def __init__(self, pairs: Sequence[tuple[T, float]]) -> None:
        self._items = tuple(item for item, _ in pairs)
        self._cumulative = tuple(itertools.accumulate(weight for _, weight in pairs))
        self._total = self._cumulative[-1]

    def pick(self, rng: random.Random) -> T:
        return self._items[bisect.bisect_right(self._cumulative, rng.random() * self._total)]


# --- Names ------------------------------------------------------------------------------


def _table(text: str) -> tuple[tuple[str, str, float], ...]:
    """Parse "王 wang 7.12  李 li 7.00 ..." into (characters, pinyin, weight) triples."""
    words = text.split()
    return tuple(
        (words[i], words[i + 1].capitalize(), float(words[i + 2])) for i in range(0, len(words), 3)
    )


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


def _chars(text: str) -> tuple[tuple[str, str], ...]:
    """Parse "伟wei 强qiang ..." into (character, pinyin) pairs."""
    return tuple((word[0], word[1:]) for word in text.split())


# Approximate shares (%) of the most common mainland surnames, plus a few two-character
# ones with tiny weights so that a family name is not always one character.
_SURNAMES = _Weighted(
    [
        ((zh, py), w)
        for zh, py, w in _table(
            """
    王 wang 7.12  李 li 7.00  张 zhang 6.40  刘 liu 5.38  陈 chen 4.53  杨 yang 3.08
    黄 huang 2.23  赵 zhao 2.19  吴 wu 2.05  周 zhou 1.89  徐 xu 1.45  孙 sun 1.38
    马 ma 1.29  朱 zhu 1.28  胡 hu 1.16  郭 guo 1.13  何 he 1.06  高 gao 1.00  林 lin 0.97
    罗 luo 0.86  郑 zheng 0.83  梁 liang 0.82  谢 xie 0.76  宋 song 0.70  唐 tang 0.69
    许 xu 0.66  韩 han 0.65  冯 feng 0.64  邓 deng 0.62  曹 cao 0.61  彭 peng 0.58
    曾 zeng 0.57  肖 xiao 0.56  田 tian 0.53  董 dong 0.53  袁 yuan 0.51  潘 pan 0.50
    于 yu 0.50  蒋 jiang 0.49  蔡 cai 0.48  余 yu 0.47  杜 du 0.46  叶 ye 0.46
    程 cheng 0.45  苏 su 0.44  魏 wei 0.43  吕 lyu 0.42  丁 ding 0.41  任 ren 0.40
    沈 shen 0.39  姚 yao 0.38  卢 lu 0.37  姜 jiang 0.36  崔 cui 0.35  钟 zhong 0.34
    谭 tan 0.33  陆 lu 0.32  汪 wang 0.32  范 fan 0.31  金 jin 0.30  石 shi 0.30
    廖 liao 0.29  贾 jia 0.29  夏 xia 0.28  韦 wei 0.28  付 fu 0.27  方 fang 0.27
    白 bai 0.26  邹 zou 0.26  孟 meng 0.25  熊 xiong 0.25  秦 qin 0.24  邱 qiu 0.24
    江 jiang 0.23  尹 yin 0.23  薛 xue 0.22  闫 yan 0.22  段 duan 0.21  雷 lei 0.21
    侯 hou 0.20  龙 long 0.20  史 shi 0.19  陶 tao 0.19  黎 li 0.18  贺 he 0.18
    顾 gu 0.18  毛 mao 0.17  郝 hao 0.17  龚 gong 0.17  邵 shao 0.16  万 wan 0.16
    钱 qian 0.16  严 yan 0.15  覃 qin 0.15  武 wu 0.15  戴 dai 0.15  莫 mo 0.14
    孔 kong 0.14  向 xiang 0.14  汤 tang 0.13
    欧阳 ouyang 0.010  上官 shangguan 0.002  司马 sima 0.002  诸葛 zhuge 0.001
    """
        )
    ]
)

# Given-name characters lean by sex and by generation: 建国 and 秀英 belong to people born
# in the 1950s, 子轩 and 梓涵 to children. Each person draws from the common pool plus the
# pool of their generation; those born in between get a third of each.
_MALE_COMMON = _chars(
    """
    伟wei 强qiang 磊lei 军jun 勇yong 杰jie 涛tao 斌bin 超chao 明ming 刚gang 平ping
    辉hui 鹏peng 华hua 飞fei 鑫xin 波bo 宇yu 浩hao 凯kai 健jian 俊jun 帆fan 帅shuai
    旭xu 宁ning 龙long 林lin 欢huan 阳yang 亮liang 成cheng 峰feng 建jian 志zhi 文wen
    东dong 海hai 晓xiao 翔xiang 毅yi 锋feng 剑jian 鸿hong 远yuan 航hang 达da 松song
    山shan 岩yan 森sen 彬bin 坤kun 雄xiong 栋dong 良liang 力li 江jiang 洪hong 晖hui
    """
)
_MALE_OLDER = _chars(
    """
    国guo 民min 德de 忠zhong 福fu 荣rong 贵gui 发fa 庆qing 根gen 水shui 生sheng
    祥xiang 兴xing 胜sheng 卫wei 红hong 金jin 宝bao 春chun 富fu 财cai 有you 正zheng
    永yong 全quan 友you 顺shun 礼li 仁ren 义yi 信xin 才cai 喜xi 来lai 炳bing 章zhang
    武wu 光guang 振zhen 铁tie 钢gang 立li 新xin 彪biao 桂gui
    """
)
_MALE_YOUNGER = _chars(
    """
    子zi 轩xuan 睿rui 泽ze 博bo 然ran 晨chen 辰chen 昊hao 天tian 佑you 铭ming 瑞rui
    嘉jia 豪hao 诚cheng 锐rui 梓zi 沐mu 一yi 逸yi 煜yu 皓hao 奕yi 弘hong 景jing
    承cheng 骏jun 晟sheng 宸chen 谦qian 恒heng 朗lang 琛chen 瀚han 霖lin 楠nan 烨ye
    炜wei 晗han 钧jun 彦yan 哲zhe 涵han 思si 翊yi 熙xi 言yan 墨mo 珩heng 屹yi
    """
)
_FEMALE_COMMON = _chars(
    """
    芳fang 娜na 敏min 静jing 丽li 艳yan 娟juan 慧hui 玲ling 婷ting 雪xue 琳lin 洁jie
    燕yan 颖ying 倩qian 晶jing 莉li 欣xin 怡yi 佳jia 丹dan 蓉rong 芸yun 晓xiao 宁ning
    雅ya 文wen 青qing 娴xian 妮ni 佩pei 仪yi 舒shu 韵yun 岚lan 冰bing 清qing
    璐lu 蓓bei 苗miao 芬fen 莹ying 珊shan 茹ru 楠nan 晨chen 洋yang 虹hong
    """
)
_FEMALE_OLDER = _chars(
    """
    秀xiu 英ying 兰lan 珍zhen 桂gui 凤feng 玉yu 梅mei 琴qin 素su 云yun 莲lian 翠cui
    香xiang 淑shu 惠hui 珠zhu 美mei 爱ai 春chun 菊ju 月yue 花hua 冬dong 霞xia 彩cai
    娥e 巧qiao 秋qiu 琼qiong 瑛ying 红hong 华hua 萍ping 娣di 妹mei 金jin 银yin 仙xian
    芝zhi 杏xing 荷he
    """
)
_FEMALE_YOUNGER = _chars(
    """
    萱xuan 涵han 雨yu 彤tong 诗shi 梦meng 瑶yao 婉wan 悦yue 妍yan 馨xin 蕾lei 菲fei
    薇wei 晴qing 露lu 嫣yan 媛yuan 婧jing 可ke 心xin 语yu 若ruo 思si 紫zi 一yi 诺nuo
    依yi 沫mo 子zi 梓zi 曦xi 昕xin 晗han 汐xi 瑾jin 璇xuan 琪qi 琦qi 瑜yu 琬wan 姝shu
    婕jie 菁jing 歆xin 恬tian 安an 希xi 蕊rui 萌meng 苒ran 芮rui 楚chu 艺yi 灵ling 澜lan 漪yi 溪xi
    """
)
_OLDER_BEFORE = 1975  # born before: the older pool joins the common one
_YOUNGER_FROM = 1990  # born in or after: the younger pool joins the common one
_GIVEN_POOLS: dict[tuple[Sex, str], tuple[tuple[str, str], ...]] = {
    ("male", "older"): _MALE_COMMON + _MALE_OLDER,
    ("male", "middle"): _MALE_COMMON + _MALE_OLDER[::3] + _MALE_YOUNGER[::3],
    ("male", "younger"): _MALE_COMMON + _MALE_YOUNGER,
    ("female", "older"): _FEMALE_COMMON + _FEMALE_OLDER,
    ("female", "middle"): _FEMALE_COMMON + _FEMALE_OLDER[::3] + _FEMALE_YOUNGER[::3],
    ("female", "younger"): _FEMALE_COMMON + _FEMALE_YOUNGER,
}
_TWO_CHARACTER_GIVEN = 0.7


def _generation(birth: date) -> str:
    if birth.year < _OLDER_BEFORE:
        return "older"
    return "younger" if birth.year >= _YOUNGER_FROM else "middle"


def _given_name(rng: random.Random, sex: Sex, birth: date, family: str) -> tuple[str, str]:
    pool = _GIVEN_POOLS[sex, _generation(birth)]
    first = rng.choice(pool)
    if rng.random() >= _TWO_CHARACTER_GIVEN:
        return first[0], first[1].capitalize()
    second = rng.choice(pool)
    # Repeated characters (婷婷) are nicknames rather than registered names, and a given
    # character equal to the family name (林林) reads oddly: draw again.
    while second[0] == first[0] or second[0] == family:
        second = rng.choice(pool)
    # Pinyin runs the syllables together as on a passport (Zian, not Zi'an).
    return first[0] + second[0], (first[1] + second[1]).capitalize()


# --- Ages -------------------------------------------------------------------------------

# (youngest, oldest, share %): a hospital's patients are older than the population:
# 0-14 12%, 15-44 30%, 45-64 30%, 65+ 28%.
_AGE_BANDS = _Weighted(
    [
        ((0, 4), 4.0),
        ((5, 14), 8.0),
        ((15, 29), 12.0),
        ((30, 44), 18.0),
        ((45, 54), 14.0),
        ((55, 64), 16.0),
        ((65, 74), 15.0),
        ((75, 84), 9.5),
        ((85, 94), 3.2),
        ((95, 100), 0.3),
    ]
)


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year without one
        return day.replace(year=day.year - years, day=28)


def _birth_date(rng: random.Random, today: date) -> date:
    low, high = _AGE_BANDS.pick(rng)
    age = rng.randint(low, high)
    # Any day on which someone turns `age` years old no later than today.
    earliest = _years_before(today, age + 1) + timedelta(days=1)
    latest = _years_before(today, age)
    return earliest + timedelta(days=rng.randint(0, (latest - earliest).days))


def _age(birth: date, today: date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


# --- Addresses --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _County:
    code: str  # GB/T 2260 county-level code, current as of 2021
    province: str
    city: str
    district: str

    @property
    def urban(self) -> bool:
        # Codes 01-20 in the last two digits are city districts (市辖区); 21+ are counties
        # and 81+ county-level cities, where more people live in villages.
        return int(self.code[4:]) < 20


def _counties(text: str) -> list[tuple[_County, float]]:
    """Parse lines of "浙江省 杭州市: 330102 上城区 60  330105 拱墅区 60 ..." (a line without
    a colon continues the city above) into counties with weights."""
    counties: list[tuple[_County, float]] = []
    province = city = ""
    for line in text.strip().splitlines():
        if ":" in line:
            head, line = line.split(":")
            province, city = head.split()
        words = line.split()
        counties += [
            (_County(words[i], province, city, words[i + 1]), float(words[i + 2]))
            for i in range(0, len(words), 3)
        ]
    return counties


# Weights are per mille of all residents: Hangzhou 510, the rest of Zhejiang 340, other
# provinces 150. Codes checked against the GB/T 2260 history in python-stdnum's cn/loc.dat;
# 临平区 330113 and 钱塘区 330114 (created 2021) postdate that file.
_COUNTY_TABLE = _Weighted(
    _counties(
        """
    浙江省 杭州市: 330102 上城区 60  330105 拱墅区 60  330106 西湖区 55  330108 滨江区 30
                   330109 萧山区 70  330110 余杭区 50  330113 临平区 35  330114 钱塘区 25
                   330111 富阳区 35  330112 临安区 25  330122 桐庐县 20  330127 淳安县 20
                   330182 建德市 25
    浙江省 宁波市: 330203 海曙区 10  330206 北仑区 6  330212 鄞州区 15  330282 慈溪市 10
                   330281 余姚市 8
    浙江省 温州市: 330302 鹿城区 10  330304 瓯海区 5  330381 瑞安市 10  330382 乐清市 10
                   330324 永嘉县 5
    浙江省 嘉兴市: 330402 南湖区 8  330481 海宁市 10  330483 桐乡市 10  330421 嘉善县 5
    浙江省 湖州市: 330502 吴兴区 10  330521 德清县 10  330522 长兴县 8  330523 安吉县 8
    浙江省 绍兴市: 330602 越城区 10  330603 柯桥区 12  330604 上虞区 8  330681 诸暨市 12
                   330683 嵊州市 5
    浙江省 金华市: 330702 婺城区 8  330703 金东区 5  330782 义乌市 12  330783 东阳市 8
                   330784 永康市 6  330781 兰溪市 5
    浙江省 台州市: 331002 椒江区 8  331003 黄岩区 5  331081 温岭市 10  331082 临海市 8
    浙江省 衢州市: 330802 柯城区 8  330881 江山市 6  330825 龙游县 5  330824 开化县 4
    浙江省 丽水市: 331102 莲都区 8  331121 青田县 4  331122 缙云县 4  331123 遂昌县 3
                   331181 龙泉市 4
    浙江省 舟山市: 330902 定海区 8  330903 普陀区 6
    安徽省 合肥市: 340104 蜀山区 10
    安徽省 芜湖市: 340202 镜湖区 6
    安徽省 黄山市: 341004 徽州区 6
    安徽省 六安市: 341502 金安区 8
    安徽省 阜阳市: 341202 颍州区 10
    江西省 南昌市: 360102 东湖区 8  360111 青山湖区 6
    江西省 上饶市: 361102 信州区 10
    江西省 新余市: 360502 渝水区 6
    江苏省 南京市: 320102 玄武区 6
    江苏省 苏州市: 320506 吴中区 7  320582 张家港市 4
    江苏省 无锡市: 320211 滨湖区 4
    江苏省 常州市: 320412 武进区 4
    上海市 上海市: 310101 黄浦区 4  310104 徐汇区 5  310115 浦东新区 6
    福建省 福州市: 350102 鼓楼区 5
    福建省 厦门市: 350203 思明区 5
    福建省 泉州市: 350583 南安市 5
    河南省 郑州市: 410105 金水区 8  410102 中原区 5
    河南省 信阳市: 411502 浉河区 6
    河南省 南阳市: 411303 卧龙区 6
    """
    )
)

# Road, estate and village names that exist in many Chinese cities, so that none looks
# out of place wherever it is drawn.
_ROADS = _words(
    """人民路 解放路 中山路 建设路 文化路 新华路 和平路 胜利路 健康路 学院路 环城东路
    环城西路 环城南路 环城北路 朝阳路 光明路 青年路 东风路 长安路 新民路 府前路 城东路
    振兴路 迎宾大道 世纪大道 滨江路 江滨路 公园路 体育路 工人路 育才路 沿江路 花园路
    广场路 金桥路 丰收路 望江路 湖滨路 凤凰路 文昌路 兴业路 创业路 园林路 西湖路"""
)
_ESTATES = _words(
    """阳光花园 锦绣家园 金色家园 翠苑 东方名苑 星河湾 绿洲花园 幸福里 和睦新村 文鼎苑
    嘉和苑 江南春城 桂花城 滨江花园 世纪新城 未来城 万家花园 东湖小区 南苑新村 紫荆花园
    香樟苑 梧桐苑 景湖苑 新城家园 枫林小区 春晓苑 水岸名邸 丽景湾 银杏苑 朝晖新村"""
)
_VILLAGES = _words(
    """新建 红星 东风 建设 联合 胜利 光明 新华 永丰 五星 和平 太平 长丰 前进 先锋 幸福
    民主 群益 金星 双桥 白沙 石桥 塘头 陈家 李家 王家 上塘 湖头 溪口 横山 长乐 东山
    西山 高桥 杨柳 桃源 清溪 龙潭 凤凰 新塘"""
)


def _flat(rng: random.Random, high_rise: bool) -> str:
    """Building, entrance and flat: 5幢2单元301室 (flat number = floor and door)."""
    floor = rng.randint(1, 33 if high_rise else 7)
    return f"{rng.randint(1, 30)}幢{rng.randint(1, 4)}单元{floor}{rng.randint(1, 4):02d}室"


def _urban_line(rng: random.Random) -> str:
    form = rng.random()
    if form < 0.4:  # an older walk-up on a street: 解放路123号5幢2单元301室
        return f"{rng.choice(_ROADS)}{rng.randint(1, 399)}号{_flat(rng, high_rise=False)}"
    if form < 0.85:  # a newer estate, known by its name: 星河湾12幢1单元1502室
        return f"{rng.choice(_ESTATES)}{_flat(rng, high_rise=True)}"
    return f"{rng.choice(_ROADS)}{rng.randint(1, 599)}号"  # a house or shop on the street


def _rural_line(rng: random.Random) -> str:
    return f"{rng.choice(_VILLAGES)}村{rng.randint(1, 12)}组{rng.randint(1, 120)}号"


def _line(rng: random.Random, county: _County) -> str:
    rural_share = 0.1 if county.urban else 0.5
    return _rural_line(rng) if rng.random() < rural_share else _urban_line(rng)


# --- Phones, insurance ------------------------------------------------------------------

# Mobile prefixes in use by the three carriers (and virtual operators on 170/171).
_MOBILE_PREFIXES = _words(
    """130 131 132 133 134 135 136 137 138 139 150 151 152 153 155 156 157 158 159
    170 171 173 175 176 177 178 180 181 182 183 184 185 186 187 188 189
    191 193 195 196 197 198 199"""
)


def _phone(rng: random.Random) -> str:
    return f"{rng.choice(_MOBILE_PREFIXES)}{rng.randrange(10**8):08d}"


_SELF_PAY = 0.05
_STUDENT_AGE = 23  # students stay on the resident scheme until they start work


def _employee_share(age: int, urban: bool) -> float:
    """The chance that an insured person's primary scheme is the employee scheme (310)."""
    if age < 18:
        return 0.0
    if age < _STUDENT_AGE:
        return 0.15
    if age < 65:
        return 0.65 if urban else 0.4
    return 0.55 if urban else 0.25  # retirees keep the employee scheme


def _insurance(rng: random.Random, age: int, urban: bool, cards: set[str]) -> Insurance | None:
    # Only the two basic schemes are ever primary; the supplements ride on them.
    if rng.random() < _SELF_PAY:
        return None
    insutype = "310" if rng.random() < _employee_share(age, urban) else "390"
    card = _card_number(rng)
    while card in cards:
        card = _card_number(rng)
    cards.add(card)
    zh, en = INSURANCE_SCHEMES[insutype]
    return Insurance(insutype, zh, en, card)


def _card_number(rng: random.Random) -> str:
    return f"{rng.choice('ABCDEFGH')}{rng.randrange(10**8):08d}"


# --- People -----------------------------------------------------------------------------


def _unique_resident_id(
    rng: random.Random, county: _County, birth: date, sex: Sex, used: set[str]
) -> str:
    # Odd sequences for men (1..999), even for women (2..998); 500 to choose from for one
    # county and birthday, so a retry is rare even at tens of thousands of people.
    while True:
        half = rng.randrange(500) if sex == "male" else rng.randrange(1, 500)
        number = resident_id(county.code, birth, 2 * half + (sex == "male"))
        if number not in used:
            used.add(number)
            return number


def people(count: int, *, seed: int, today: date) -> Iterator[Person]:
    """`count` residents, the same ones for the same seed and `today`.

    Resident ids (and insurance card numbers) are unique within one call.
    """
    rng = random.Random(seed)
    ids: set[str] = set()
    cards: set[str] = set()
    for _ in range(count):
        sex: Sex = "male" if rng.random() < 0.5 else "female"
        birth = _birth_date(rng, today)
        family, family_pinyin = _SURNAMES.pick(rng)
        given, given_pinyin = _given_name(rng, sex, birth, family)
        county = _COUNTY_TABLE.pick(rng)
        yield Person(
            family=family,
            given=given,
            family_pinyin=family_pinyin,
            given_pinyin=given_pinyin,
            gender=sex,
            birth_date=birth,
            resident_id=_unique_resident_id(rng, county, birth, sex, ids),
            phone=_phone(rng),
            province=county.province,
            city=county.city,
            district=county.district,
            address_code=county.code,
            line=_line(rng, county),
            insurance=_insurance(rng, _age(birth, today), county.urban, cards),
        )
