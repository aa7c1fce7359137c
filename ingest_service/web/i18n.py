"""A small message catalogue (English, Simplified Chinese) for the pages people read alone.

The patient's self-view, the login and the error pages are translated; the clinician pages
are English for now (docs/web.md). The language comes from ``?lang=`` (remembered in a
cookie), else the cookie, else the browser's ``Accept-Language``, else Chinese (the
deployments are in China). Pure: no I/O, no external i18n service.
"""

# The Chinese messages use full-width punctuation, as written Chinese does.
# ruff: noqa: RUF001

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal, get_args

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = get_args(Lang)
DEFAULT_LANG: Lang = "zh"

_CATALOGUE: dict[str, tuple[str, str]] = {
    # key: (English, Chinese)
    "app_name": ("vitalstream", "vitalstream 健康监测"),
    "not_a_device": (
        "Not a cleared medical device. In an emergency call 120.",
        "本系统不是经批准的医疗器械。紧急情况请拨打 120。",
    ),
    "skip_to_content": ("Skip to content", "跳到主要内容"),
    "language": ("Language", "语言"),
    "log_out": ("Log out", "退出登录"),
    "log_in": ("Log in", "登录"),
    "login_title": ("Log in", "登录"),
    "login_help": (
        "Paste the access token your clinic gave you.",
        "请粘贴诊所提供给您的登录令牌。",
    ),
    "token_label": ("Access token", "登录令牌"),
    "username_label": ("Username", "用户名"),
    "password_label": ("Password", "密码"),
    "login_with_token": ("Log in with an access token", "使用登录令牌登录"),
    "login_failed": ("Wrong username or password.", "用户名或密码错误。"),
    "too_many_attempts": (
        "Too many failed attempts. Please wait a few minutes and try again.",
        "失败次数过多，请稍等几分钟后再试。",
    ),
    "login_required": ("Please log in to see this page.", "请先登录再查看此页面。"),
    "session_expired": (
        "Your session has expired. Please log in again.",
        "登录已过期，请重新登录。",
    ),
    "invalid_token": ("That token was not accepted.", "该令牌无效。"),
    "wrong_role": ("This page is not available to your account.", "您的账户无权查看此页面。"),
    "not_permitted": ("You may not see this person's data.", "您无权查看此人的数据。"),
    "not_found": ("Not found.", "未找到。"),
    "csrf": (
        "The form had expired. Please reload the page and try again.",
        "表单已过期，请刷新页面后重试。",
    ),
    "form_too_large": ("The form was too large.", "表单内容过大。"),
    "form_encoding": ("The form could not be read.", "无法读取表单。"),
    "conflict": (
        "Someone changed this in the meantime. Please reload the page.",
        "内容已被他人修改，请刷新页面。",
    ),
    "invalid_input": ("Please check the form.", "请检查填写的内容。"),
    "error_title": ("Something went wrong", "出错了"),
    "back_home": ("Back to the start page", "返回首页"),
    # patient self-view
    "me_title": ("My health readings", "我的健康数据"),
    "me_intro": (
        "Your latest measurements and any messages for your care team.",
        "这里显示您最新的测量结果和医生收到的提醒。",
    ),
    "latest_heading": ("My latest readings", "最新测量"),
    "no_readings": ("No readings yet.", "暂时没有测量数据。"),
    "measured": ("measured {when}", "测量时间：{when}"),
    "alerts_heading": ("Messages to my care team", "发给医生的提醒"),
    "no_alerts": ("No open alerts. Nothing needs attention.", "目前没有需要处理的提醒。"),
    "alert_open": ("Your doctor has been told.", "已通知您的医生。"),
    "alert_seen": ("Your doctor has seen this.", "医生已查看。"),
    "alert_closed": ("Closed.", "已处理。"),
    "export_heading": ("My data", "我的数据"),
    "export_help": (
        "Download all your readings as a spreadsheet file (CSV).",
        "将您的全部测量数据下载为表格文件（CSV）。",
    ),
    "export_button": ("Download my data (CSV)", "下载我的数据（CSV）"),
    "feel_unwell": (
        "If you feel unwell, contact your family doctor. In an emergency call 120.",
        "如果感觉不适，请联系您的家庭医生。紧急情况请拨打 120。",
    ),
    # plain-language judgements (display bands, not alert rules: docs/web.md)
    "band_high": ("higher than your target", "高于目标"),
    "band_low": ("lower than usual", "低于正常"),
    "band_ok": ("in the usual range", "在正常范围内"),
    "band_none": ("", ""),
    "no_value": ("the device could not measure", "设备未能测出"),
    # metric names
    "metric_bp": ("Blood pressure", "血压"),
    "metric_bp_systolic": ("Blood pressure (upper number)", "收缩压（高压）"),
    "metric_bp_diastolic": ("Blood pressure (lower number)", "舒张压（低压）"),
    "metric_glucose": ("Blood sugar", "血糖"),
    "metric_weight": ("Weight", "体重"),
    "metric_spo2": ("Blood oxygen", "血氧"),
    "metric_heart_rate": ("Heart rate", "心率"),
    "metric_pulse_rate": ("Pulse", "脉搏"),
    "metric_body_temperature": ("Temperature", "体温"),
    "metric_respiratory_rate": ("Breathing rate", "呼吸频率"),
    # relative times
    "just_now": ("just now", "刚刚"),
    "minutes_ago": ("{n} min ago", "{n} 分钟前"),
    "hours_ago": ("{n} h ago", "{n} 小时前"),
    "days_ago": ("{n} days ago", "{n} 天前"),
}

CATALOGUE: Mapping[str, Mapping[Lang, str]] = MappingProxyType(
    {key: MappingProxyType({"en": en, "zh": zh}) for key, (en, zh) in _CATALOGUE.items()}
)


def as_lang(value: str | None) -> Lang | None:
    """``value`` as a supported language ('zh-CN' → 'zh'), or None."""
    if not value:
        return None
    primary = value.strip().lower().replace("_", "-").split("-")[0]
    for lang in LANGS:
        if primary == lang:
            return lang
    return None


def choose_lang(query: str | None, cookie: str | None, accept_language: str | None) -> Lang:
    """The query wins, then the cookie, then the browser's first supported language."""
    for candidate in (query, cookie):
        chosen = as_lang(candidate)
        if chosen is not None:
            return chosen
    for part in (accept_language or "").split(","):
        chosen = as_lang(part.split(";")[0])
        if chosen is not None:
            return chosen
    return DEFAULT_LANG


def translate(lang: Lang, key: str, **values: object) -> str:
    """The message ``key`` in ``lang`` with ``{name}`` filled; an unknown key shows itself."""
    entry = CATALOGUE.get(key)
    if entry is None:
        return key
    text = entry[lang]
    return text.format(**values) if values else text
