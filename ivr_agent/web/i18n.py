"""Every string the pages show, in zh-CN (the default) and English. API errors carry an English
message and a stable `error` code; the pages show the code's text from here."""

from __future__ import annotations

from typing import Final

LANGUAGES: Final = ("zh-CN", "en")

MESSAGES: Final[dict[str, dict[str, str]]] = {
    "zh-CN": {
        "lang_name": "中文",
        "title_login": "登录",
        "title_recordings": "通话录音",
        "name": "用户名",
        "password": "密码",
        "sign_in": "登录",
        "sign_out": "退出",
        "signed_in_as": "当前用户",
        "from": "开始时间",
        "to": "结束时间",
        "agent": "坐席",
        "caller": "来电号码",
        "disposition": "结果",
        "evidence": "证据",
        "status": "状态",
        "any": "全部",
        "yes": "是",
        "no": "否",
        "search": "查询",
        "more": "更多",
        "time": "时间",
        "duration": "时长",
        "actions": "操作",
        "play": "播放",
        "download": "下载",
        "no_results": "没有符合条件的录音",
        "loading": "正在加载…",
        "now_playing": "正在播放",
        "problem": "异常",
        "seconds": "秒",
        "disp_answered": "已接听",
        "disp_abandoned": "放弃",
        "disp_no_agent": "无人接听",
        "disp_silent_line": "无声电话",
        "disp_after_hours": "非工作时间",
        "disp_blacklisted": "黑名单",
        "disp_failed": "失败",
        "disp_unknown": "未知",
        "st_recording": "录音中",
        "st_complete": "完整",
        "st_missing": "缺失",
        "st_failed": "损坏",
        "st_deleted": "已删除",
        "err_unauthenticated": "请先登录。",
        "err_login_failed": "用户名或密码错误。",
        "err_forbidden": "您没有权限查看录音。",
        "err_not_found": "找不到该录音。",
        "err_gone": "该录音已按保存期限删除。",
        "err_conflict": "录音尚未完成。",
        "err_too_many_requests": "尝试次数过多，请稍后再试。",
        "err_bad_request": "请求有误。",
        "err_server_error": "服务器出错，请稍后再试。",
    },
    "en": {
        "lang_name": "English",
        "title_login": "Sign in",
        "title_recordings": "Call recordings",
        "name": "User name",
        "password": "Password",
        "sign_in": "Sign in",
        "sign_out": "Sign out",
        "signed_in_as": "Signed in as",
        "from": "From",
        "to": "To",
        "agent": "Agent",
        "caller": "Caller number",
        "disposition": "Outcome",
        "evidence": "Evidence",
        "status": "Status",
        "any": "Any",
        "yes": "Yes",
        "no": "No",
        "search": "Search",
        "more": "More",
        "time": "Time",
        "duration": "Duration",
        "actions": "Actions",
        "play": "Play",
        "download": "Download",
        "no_results": "No recordings match.",
        "loading": "Loading…",
        "now_playing": "Now playing",
        "problem": "Problem",
        "seconds": "s",
        "disp_answered": "Answered",
        "disp_abandoned": "Abandoned",
        "disp_no_agent": "No agent",
        "disp_silent_line": "Silent line",
        "disp_after_hours": "After hours",
        "disp_blacklisted": "Blacklisted",
        "disp_failed": "Failed",
        "disp_unknown": "Unknown",
        "st_recording": "Recording",
        "st_complete": "Complete",
        "st_missing": "Missing",
        "st_failed": "Damaged",
        "st_deleted": "Deleted",
        "err_unauthenticated": "Please sign in.",
        "err_login_failed": "Wrong user name or password.",
        "err_forbidden": "You are not allowed to access recordings.",
        "err_not_found": "No such recording.",
        "err_gone": "This recording was deleted at the end of its retention period.",
        "err_conflict": "The recording is not finished yet.",
        "err_too_many_requests": "Too many attempts; please wait and try again.",
        "err_bad_request": "The request is not valid.",
        "err_server_error": "Server error; please try again later.",
    },
}


def pick_language(requested: str | None, remembered: str | None, default: str) -> str:
    """`?lang=` if known, else the language the user chose before (cookie), else the site's
    (`site.language`, zh-CN unless configured otherwise). Accept-Language is not consulted:
    the hotline's pages are Chinese unless someone asks for English."""
    for lang in (requested, remembered, default):
        if lang in LANGUAGES:
            return str(lang)
    return LANGUAGES[0]


def messages(lang: str) -> dict[str, str]:
    return MESSAGES.get(lang, MESSAGES[LANGUAGES[0]])
