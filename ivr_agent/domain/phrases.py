"""The handbook's standard phrases (section 五, 应答规范) and complaint steps (section 六).

One place for every sentence an agent says or the line plays. zh-CN is the handbook's wording in
natural Simplified Chinese; English is a faithful translation for English-language desks. Each
phrase can be overridden by the operator (`with_overrides`), so a site may use its own wording.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final


class Language(enum.Enum):
    ZH_CN = "zh-CN"
    EN = "en"


class Phase(enum.Enum):
    """When in a call a phrase is used; the screen pop shows the phrases of the current phase."""

    RINGING = "ringing"  # before answering: what to say first
    ANSWERED = "answered"  # the call is connected
    ON_HOLD = "on_hold"  # the agent is checking something
    COMPLAINT = "complaint"
    ABUSE = "abuse"
    CLOSING = "closing"


class Key(enum.Enum):
    GREETING = "greeting"
    SILENT_LINE = "silent_line"
    HOLD_REQUEST = "hold_request"
    HOLD_CHECK = "hold_check"
    HOLD_RETURN = "hold_return"
    APOLOGY_ACCEPTED = "apology_accepted"
    PRIVACY_REFUSAL = "privacy_refusal"
    CLARIFY_COMPLAINT = "clarify_complaint"
    SORRY_INCONVENIENCE = "sorry_inconvenience"
    CALM_ANGRY = "calm_angry"
    SUGGESTION_THANKS = "suggestion_thanks"
    CONFIRM_PART = "confirm_part"
    REPEAT_PLEASE = "repeat_please"
    ANYTHING_ELSE = "anything_else"
    FREE_THE_LINE = "free_the_line"
    CIVIL_WARNING = "civil_warning"
    CLOSING = "closing"
    AFTER_HOURS = "after_hours"  # the hotline's prompt when nobody is on duty
    CALLBACK_RECORDED = "callback_recorded"  # after the caller asked for a call back


@dataclass(frozen=True, slots=True)
class Phrase:
    key: Key
    text: str


_ZH: Final[Mapping[Key, str]] = {
    Key.GREETING: "您好!请问有什么可以帮到您?",
    Key.SILENT_LINE: "对不起,我听不到你的声音,你换一部电话再打过来,好吗?我现在挂机了。",
    Key.HOLD_REQUEST: "对不起,请稍等。",
    Key.HOLD_CHECK: "对不起,您能让我先帮您查一下吗?",
    Key.HOLD_RETURN: "很抱歉让您久等了。",
    Key.APOLOGY_ACCEPTED: "没关系!还有什么需要我帮助吗?",
    Key.PRIVACY_REFUSAL: "对不起,我们必须保护用户的利益,不能泄露客户的个人信息。",
    Key.CLARIFY_COMPLAINT: "为了尽快为您解决这个问题,我可以向您提几个小问题吗?",
    Key.SORRY_INCONVENIENCE: "对不起,给您造成不便,敬请原谅。",
    Key.CALM_ANGRY: (
        "对不起,我非常理解您的心情,但是为了帮您解决问题,请您慢慢说好吗?我会尽全力帮您解决的。"
    ),
    Key.SUGGESTION_THANKS: "您的建议很重要,我会及时转递给相关部门,感谢您的支持!",
    Key.CONFIRM_PART: "对不起,请问您的意思是……吗?",
    Key.REPEAT_PLEASE: "对不起,我没听清您的讲话,请您重复一遍,好吗?谢谢!",
    Key.ANYTHING_ELSE: "请问还有什么需要查询吗?",
    Key.FREE_THE_LINE: (
        "对不起,请问您还有其他业务需要帮助吗?如没有,请挂机,把线路让给其他的客户,好吗?"
    ),
    Key.CIVIL_WARNING: "对不起,先生/小姐,请您使用文明用语,否则很抱歉,我们将结束这次通话。",
    Key.CLOSING: "感谢您的电话,再见!",
    Key.AFTER_HOURS: "您好,现在是非工作时间,暂时没有客服人员接听。如需我们回电,请按1。",
    Key.CALLBACK_RECORDED: "已记录您的回电请求,我们上班后会尽快给您回电。再见。",
}

_EN: Final[Mapping[Key, str]] = {
    Key.GREETING: "Hello! How can I help you?",
    Key.SILENT_LINE: (
        "Sorry, I cannot hear you. Please call again from another phone. I am hanging up now."
    ),
    Key.HOLD_REQUEST: "Sorry, one moment please.",
    Key.HOLD_CHECK: "Sorry, may I check that for you first?",
    Key.HOLD_RETURN: "Sorry to have kept you waiting.",
    Key.APOLOGY_ACCEPTED: "That's all right! Is there anything else I can help you with?",
    Key.PRIVACY_REFUSAL: (
        "Sorry, we must protect our customers' interests and cannot disclose anyone's personal "
        "information."
    ),
    Key.CLARIFY_COMPLAINT: "To solve this for you as soon as possible, may I ask a few questions?",
    Key.SORRY_INCONVENIENCE: "Sorry for the inconvenience; please accept our apologies.",
    Key.CALM_ANGRY: (
        "Sorry, I fully understand how you feel, but to help you, could you tell me slowly? "
        "I will do my best to solve it."
    ),
    Key.SUGGESTION_THANKS: (
        "Your suggestion matters; I will pass it on to the department concerned. Thank you!"
    ),
    Key.CONFIRM_PART: "Sorry, do you mean ...?",
    Key.REPEAT_PLEASE: "Sorry, I didn't catch that. Could you repeat it, please? Thank you!",
    Key.ANYTHING_ELSE: "Is there anything else you would like to check?",
    Key.FREE_THE_LINE: (
        "Sorry, is there anything else I can help you with? If not, please hang up so that other "
        "customers can get through."
    ),
    Key.CIVIL_WARNING: (
        "Sorry, sir/madam, please keep your language civil, or I am afraid we will have to end "
        "this call."
    ),
    Key.CLOSING: "Thank you for calling, goodbye!",
    Key.AFTER_HOURS: "Hello, nobody can take your call right now. For a call back, press 1.",
    Key.CALLBACK_RECORDED: "Your call-back request is recorded; we will call you soon. Goodbye.",
}

TEXTS: Final[Mapping[Language, Mapping[Key, str]]] = MappingProxyType(
    {Language.ZH_CN: MappingProxyType(dict(_ZH)), Language.EN: MappingProxyType(dict(_EN))}
)

# What the screen pop offers in each phase, most likely first.
BY_PHASE: Final[Mapping[Phase, tuple[Key, ...]]] = MappingProxyType(
    {
        Phase.RINGING: (Key.GREETING,),
        Phase.ANSWERED: (
            Key.GREETING,
            Key.HOLD_REQUEST,
            Key.HOLD_CHECK,
            Key.REPEAT_PLEASE,
            Key.CONFIRM_PART,
            Key.PRIVACY_REFUSAL,
            Key.SUGGESTION_THANKS,
        ),
        Phase.ON_HOLD: (Key.HOLD_RETURN,),
        Phase.COMPLAINT: (
            Key.CLARIFY_COMPLAINT,
            Key.SORRY_INCONVENIENCE,
            Key.CALM_ANGRY,
            Key.SUGGESTION_THANKS,
        ),
        Phase.ABUSE: (Key.CALM_ANGRY, Key.CIVIL_WARNING, Key.APOLOGY_ACCEPTED),
        Phase.CLOSING: (Key.ANYTHING_ELSE, Key.FREE_THE_LINE, Key.CLOSING),
    }
)

# Handbook 六, 处理投诉标准程序: the five steps, in order.
COMPLAINT_STEPS: Final[Mapping[Language, tuple[str, ...]]] = MappingProxyType(
    {
        Language.ZH_CN: (
            "倾听并认真记录",
            "表示感谢或表示歉意",
            "帮投诉人分析问题的可能原因",
            "征求投诉人的解决意见",
            "告知对方,我司会立即或尽快为其解决问题",
        ),
        Language.EN: (
            "Listen and record carefully",
            "Thank the caller or apologise",
            "Analyse the possible causes with the caller",
            "Ask what resolution the caller wants",
            "Tell the caller we will solve it at once or as soon as possible",
        ),
    }
)


def language(tag: str) -> Language:
    """'zh-CN' / 'en' (also 'zh', 'en-US', ...) -> Language; unknown tags fall back to zh-CN."""
    return Language.EN if tag.lower().startswith("en") else Language.ZH_CN


def phrase(key: Key, lang: Language, overrides: Mapping[Key, str] | None = None) -> Phrase:
    text = (overrides or {}).get(key) or TEXTS[lang][key]
    return Phrase(key, text)


def for_phase(
    phase: Phase, lang: Language, overrides: Mapping[Key, str] | None = None
) -> tuple[Phrase, ...]:
    return tuple(phrase(k, lang, overrides) for k in BY_PHASE[phase])


def parse_overrides(raw: Mapping[str, object], where: str) -> dict[Key, str]:
    """Operator overrides {'greeting': '...'}; unknown keys and empty texts are errors."""
    out: dict[Key, str] = {}
    known = {k.value: k for k in Key}
    for name, value in raw.items():
        if name not in known:
            raise ValueError(f"{where}: unknown phrase {name!r}; known: {', '.join(sorted(known))}")
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{where}: phrase {name!r} must be a non-empty string")
        out[known[name]] = value.strip()
    return out
