"""Job descriptions: the short one every row has, and long realistic ones of about N characters."""

import random

from jobstream.simulator import vocab


def short(rng: random.Random) -> str:
    duty_a, duty_b = rng.sample(vocab.DUTIES, 2)
    benefit_a, benefit_b = rng.sample(vocab.BENEFITS, 2)
    return (
        f"岗位职责:1.{duty_a};2.{duty_b}。"
        f"任职要求:{rng.choice(vocab.REQUIREMENTS)}。"
        f"福利待遇:{benefit_a}、{benefit_b}。"
    )


def long(rng: random.Random, chars: int) -> str:
    """A posting of about `chars` characters: company, duties, requirements, pay, hours, contact.

    Sections repeat with fresh draws until the text is long enough, then it is cut at the last
    sentence end that keeps it within 10 % of `chars` (a hard cut when there is none).
    """
    parts: list[str] = []
    length = 0
    section = 0
    while length < chars:
        text = _section(rng, section)
        parts.append(text)
        length += len(text)
        section += 1
    whole = "".join(parts)
    cut = whole.rfind("。", 0, chars + chars // 10) + 1
    return whole[:cut] if cut >= chars - chars // 10 else whole[:chars]


def _section(rng: random.Random, n: int) -> str:
    kind = n % 6
    if kind == 0:
        return f"【公司介绍】{rng.choice(vocab.COMPANY_INTROS)}。"
    if kind == 1:
        duties = rng.sample(vocab.DUTIES + vocab.MORE_DUTIES, 4)
        numbered = ";".join(f"{i}.{d}" for i, d in enumerate(duties, 1))
        return f"【岗位职责】{numbered}。"
    if kind == 2:
        asks = rng.sample(vocab.REQUIREMENTS + vocab.MORE_REQUIREMENTS, 3)
        return f"【任职要求】{';'.join(asks)}。"
    if kind == 3:
        benefits = "、".join(rng.sample(vocab.BENEFITS, 4))
        return f"【福利待遇】{benefits}。{rng.choice(vocab.SALARY_NOTES)}。"
    if kind == 4:
        return f"【工作时间】{rng.choice(vocab.WORK_HOURS)}。"
    return f"【联系方式】{rng.choice(vocab.CONTACTS)}。"
