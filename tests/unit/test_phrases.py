"""The handbook's phrases: complete in both languages, right per phase, overridable."""

from __future__ import annotations

import pytest

from ivr_agent.domain import phrases as p
from ivr_agent.domain.phrases import Key, Language, Phase


def test_every_phrase_exists_in_every_language() -> None:
    for lang in Language:
        assert set(p.TEXTS[lang]) == set(Key)
        assert all(text.strip() for text in p.TEXTS[lang].values())
        assert len(p.COMPLAINT_STEPS[lang]) == 5


def test_handbook_wording_without_the_machine_swaps() -> None:
    zh = p.TEXTS[Language.ZH_CN]
    assert zh[Key.SILENT_LINE] == "对不起,我听不到你的声音,你换一部电话再打过来,好吗?我现在挂机了。"
    assert zh[Key.HOLD_RETURN] == "很抱歉让您久等了。"
    assert zh[Key.GREETING] == "您好!请问有什么可以帮到您?"
    assert zh[Key.CIVIL_WARNING] == (
        "对不起,先生/小姐,请您使用文明用语,否则很抱歉,我们将结束这次通话。"
    )
    assert zh[Key.CLOSING] == "感谢您的电话,再见!"
    joined = "".join(zh.values())
    for swapped in ("愧疚", "爱护", "否側", "剛好", "須要"):
        assert swapped not in joined


def test_phase_phrases() -> None:
    assert [x.key for x in p.for_phase(Phase.ON_HOLD, Language.ZH_CN)] == [Key.HOLD_RETURN]
    closing = p.for_phase(Phase.CLOSING, Language.EN)
    assert closing[-1].text == "Thank you for calling, goodbye!"
    assert set(p.BY_PHASE) == set(Phase)


def test_overrides() -> None:
    over = p.parse_overrides({"greeting": " 您好,这里是客服热线! "}, "site.toml")
    assert p.phrase(Key.GREETING, Language.ZH_CN, over).text == "您好,这里是客服热线!"
    assert p.phrase(Key.CLOSING, Language.ZH_CN, over).text == "感谢您的电话,再见!"
    with pytest.raises(ValueError, match="unknown phrase 'greting'"):
        p.parse_overrides({"greting": "x"}, "site.toml")
    with pytest.raises(ValueError, match="non-empty string"):
        p.parse_overrides({"greeting": " "}, "site.toml")


@pytest.mark.parametrize(
    ("tag", "lang"),
    [
        ("zh-CN", Language.ZH_CN),
        ("en", Language.EN),
        ("en-US", Language.EN),
        ("fr", Language.ZH_CN),
    ],
)
def test_language(tag: str, lang: Language) -> None:
    assert p.language(tag) is lang
