"""Hostile kinds that put odd values in the text fields; all of them are published."""

from jobstream.simulator.hostile.base import Base, Spoiled, published


def text_padded(base: Base) -> Spoiled:
    f = base.fields
    return published(
        base.with_fields(
            Std_class=f"  {f['Std_class']} ",
            aca112=f"\u3000\u3000{f['aca112']}\u3000",
            AAB004=f"\t{f['AAB004']}\r\n",
            aab302=f"\n{f['aab302']}\u00a0",
            acb22a=f" {f.get('acb22a') or '岗位职责: 见面详谈'}\n\n",
            Experience="\u3000 1-3年 \u3000",
        )
    )


def text_null_missing(base: Base) -> Spoiled:
    fields = base.with_fields(Std_class=None, acb241=None, aab302="")
    for key in ("Experience", "aac011"):
        fields.pop(key, None)
    return published(fields)


def text_numbers(base: Base) -> Spoiled:
    # 1e16 dumps as "1e+16" and reads back as the float whose str() is "1e+16".
    return published(
        base.with_fields(acb241=8000, Experience=3, aac011=2.5, Std_class=12000.0, aab302=1e16)
    )


def text_bools(base: Base) -> Spoiled:
    return published(base.with_fields(Experience=True, aac011=False, acb241=True))


def text_containers(base: Base) -> Spoiled:
    return published(
        base.with_fields(
            Experience=["1-3年", "3-5年"],
            aab302={"城市": "青岛", "区": "黄岛区"},
            acb241={"min": 8000, "max": 12000, "单位": "元/月"},
            Std_class=[],
            aac011={},
        )
    )


def html(base: Base) -> Spoiled:
    f = base.fields
    return published(
        base.with_fields(
            aca112='<script>alert("x")</script>',
            AAB004=f"<b>{f['AAB004']}</b>",
            aab302=f"{f['aab302']}&nbsp;",
            acb22a=f'A &amp; B &lt;br&gt; <br/><p onclick="x()">{f.get("acb22a") or ""}</p>',
        )
    )


def control_chars(base: Base) -> Spoiled:
    # U+001C..U+001F count as whitespace for str.strip(), U+0000 and U+0007 do not.
    f = base.fields
    return published(
        base.with_fields(
            aca112=f"{f['aca112']}\u0000夜班",
            Std_class=f"{f['Std_class']}\u0007",
            AAB004=f"\u001f{f['AAB004']}\u001e",
            acb22a=f"第一行\u001f第二行\u0000\u0008{f.get('acb22a') or ''}",
            Experience="\u0000",
        )
    )


def invisible_and_emoji(base: Base) -> Spoiled:
    # Zero-width, bidi and BOM characters are not whitespace: they survive strip().
    f = base.fields
    return published(
        base.with_fields(
            aca112=f"\u200b急招\u200d{f['aca112']}\u2060",
            AAB004=f"\u202e{f['AAB004']}\u202c",
            aab302=f"\u2066{f['aab302']}\u2069",
            acb22a=f"👍急招😀 👨‍👩‍👧 🇨🇳 {f.get('acb22a') or ''}",
            Experience="\ufeff1-3年",
        )
    )
