"""Mandarin sentences for the lip-sync data set: a small random grammar (service desk and daily life).

The sentences of ``anima bench lipsync --lang zh`` (the zh pack's ``[bench]``) are removed, so
the Mandarin check stays held out.
"""

from __future__ import annotations

import random

SUBJECTS = [
    "我",
    "你",
    "他",
    "她",
    "我们",
    "我妈妈",
    "我的朋友",
    "这位老先生",
    "王女士",
    "小李",
    "我爸爸",
    "我的邻居",
    "那个学生",
    "张师傅",
    "孩子们",
    "我的同事",
]
VERBS = [
    "想办理",
    "需要补办",
    "忘了带",
    "丢了",
    "要更新",
    "想了解",
    "刚拿到",
    "还没收到",
    "想预约",
    "要取消",
    "想换",
    "要交",
    "想查一下",
    "不会填",
    "已经寄出了",
    "想咨询",
]
OBJECTS = [
    "护照",
    "驾驶证",
    "结婚证",
    "户口本",
    "银行卡",
    "出生证明",
    "营业执照",
    "电费账单",
    "房产证",
    "学生证",
    "工作证明",
    "体检报告",
    "申请表",
    "水费发票",
    "退税材料",
    "签证",
]
TIMES = [
    "明天早上",
    "下个星期",
    "后天下午",
    "周末",
    "月底之前",
    "这个月",
    "上个星期",
    "今天晚上",
    "中午十二点",
    "八点半",
    "国庆节以后",
    "春节前",
]
PLACES = [
    "二楼大厅",
    "东边的窗口",
    "一号柜台",
    "银行门口",
    "地铁站旁边",
    "图书馆对面",
    "三楼",
    "停车场出口",
    "医院附近",
    "邮局里面",
]
QUESTIONS = [
    "要等多久",
    "需要多少钱",
    "在哪里排队",
    "可以代办吗",
    "几点关门",
    "要带照片吗",
    "能不能快一点",
    "有没有人帮忙",
    "怎么预约",
    "可以用手机付款吗",
]
FIXED = [
    "您好，欢迎光临，请问有什么可以帮您？",
    "请稍等一下，我马上帮您查询。",
    "谢谢你的耐心，祝你生活愉快。",
    "对不起，这个问题我不太清楚。",
    "绿色的椅子旁边有一只白色的小猫。",
    "北京的秋天很美，天空又高又蓝。",
    "吃葡萄不吐葡萄皮，不吃葡萄倒吐葡萄皮。",
    "四是四，十是十，十四是十四，四十是四十。",
    "妈妈骑马，马慢，妈妈骂马。",
    "一二三四五六七八九十。",
    "我喜欢喝热茶，也喜欢吃水果。",
    "外面下雨了，别忘了带雨伞。",
]


def _one(rng: random.Random) -> str:
    s, v, o = rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(OBJECTS)
    kind = rng.randrange(5)
    if kind == 0:
        return f"{s}{rng.choice(TIMES)}{v}{o}。"
    if kind == 1:
        return f"{s}{v}{o}，{rng.choice(QUESTIONS)}？"
    if kind == 2:
        return f"请问在{rng.choice(PLACES)}能{v[-2:]}{o}吗？"
    if kind == 3:
        return f"{rng.choice(TIMES)}{s}去{rng.choice(PLACES)}{v}{o}，{rng.choice(QUESTIONS)}？"
    return rng.choice(FIXED)


def sentences_zh(n: int, seed: int, held_out: tuple[str, ...] = ()) -> list[str]:
    """``n`` Mandarin sentences (repeatable for a seed), none of them in ``held_out``."""
    rng = random.Random(seed)
    banned = {h.strip("。？！，") for h in held_out}
    out: list[str] = []
    while len(out) < n:
        text = _one(rng)
        if text.strip("。？！，") not in banned:
            out.append(text)
    return out
