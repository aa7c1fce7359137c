"""A small message catalogue (English, Simplified Chinese) for the pages people read alone.

The patient's self-view, the login and the error pages are translated, and so are the
doctor's panel, inbox, patient, CGM and follow-up pages with their chart legends, the ECG
reader and ER pages, and the scripts' status texts (docs/web.md). The language comes from
``?lang=`` (remembered in a cookie), else the cookie, else the browser's ``Accept-Language``,
else Chinese (the deployments are in China; the clinician pages fall back to English).
Pure: no I/O, no external i18n service.
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
    "other_hospital": (
        "This incident is routed to another hospital.",
        "该急救事件已分派至其他医院。",
    ),
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
    # doctor pages (panel, inbox, per-patient page, follow-up)
    "nav_panel": ("My patients", "我的患者"),
    "nav_alerts": ("Alert inbox", "告警收件箱"),
    "nav_followup": ("Follow-up", "随访"),
    "panel_title": ("My patients", "我的患者"),
    "panel_hint": (
        "Ranked by what needs attention: unacknowledged alerts by severity, then acknowledged"
        " ones, then the newest alert, then devices that have been silent for more than {h} h.",
        "按需要关注的程度排序：先按严重程度列出未确认的告警，再列出已确认的告警，然后是最新告警，"
        "最后是超过 {h} 小时没有数据的设备。",
    ),
    "live_on": ("Updates live", "实时更新"),
    "live_turn_off": ("turn off", "关闭"),
    "live_turn_on": ("Turn live updates on", "开启实时更新"),
    "panel_caption": ("Patients ranked by attention", "按关注程度排序的患者"),
    "col_patient": ("Patient", "患者"),
    "col_open_alerts": ("Open alerts", "未关闭的告警"),
    "col_newest_alert": ("Newest alert", "最新告警"),
    "col_last_reading": ("Last reading", "最近一次测量"),
    "none": ("none", "无"),
    "acknowledged_suffix": ("acknowledged", "已确认"),
    "no_readings_short": ("no readings", "无测量数据"),
    "silent": ("silent", "无数据"),
    "no_patients": ("No patients to show.", "没有可显示的患者。"),
    "sev_critical": ("critical", "危急"),
    "sev_high": ("high", "高"),
    "sev_medium": ("medium", "中"),
    "sev_low": ("low", "低"),
    "sev_info": ("info", "提示"),
    "state_active": ("active", "待处理"),
    "state_acknowledged": ("acknowledged", "已确认"),
    "state_snoozed": ("snoozed", "已暂停提醒"),
    "state_shelved": ("shelved", "已搁置"),
    "state_resolved": ("resolved", "处理完毕"),
    "inbox_title": ("Alert inbox", "告警收件箱"),
    "show": ("Show", "显示"),
    "show_open": ("open alerts", "未关闭的告警"),
    "show_all": ("all recent alerts", "近期全部告警"),
    "alerts_caption": ("Alerts", "告警"),
    "col_severity": ("Severity", "严重程度"),
    "col_alert": ("Alert", "告警"),
    "col_time": ("Time", "时间"),
    "col_state": ("State", "状态"),
    "col_actions": ("Actions", "操作"),
    "no_alerts_short": ("No alerts.", "没有告警。"),
    "seen_times": ("seen {n} times", "出现 {n} 次"),
    "condition_cleared": ("condition cleared", "情况已恢复"),
    "until": ("until", "直至"),
    "escalated_level": ("escalated (level {n})", "已升级（第 {n} 级）"),
    "by": ("by", "操作人"),
    "note_optional": ("Note (optional)", "备注（可选）"),
    "note_required_resolve": ("Note (required to resolve)", "备注（处理完毕时必填）"),
    "action_acknowledge": ("Acknowledge", "确认"),
    "action_resolve": ("Resolve", "处理完毕"),
    "more_actions": ("Snooze, shelve or escalate", "暂停提醒、搁置或升级"),
    "snooze_for": ("Snooze for", "暂停提醒时长"),
    "action_snooze": ("Snooze", "暂停提醒"),
    "shelve_for": ("Shelve for", "搁置时长"),
    "reason_required_shelve": ("Reason (required to shelve)", "原因（搁置时必填）"),
    "action_shelve": ("Shelve", "搁置"),
    "action_escalate": ("Escalate to the next contact", "升级给下一位联系人"),
    "closed": ("closed", "已关闭"),
    "problem_resolve": ("A note is required to resolve an alert.", "处理完毕前必须填写备注。"),
    "problem_shelve": (
        "A reason and a shelf time are required to shelve an alert.",
        "搁置告警需要填写原因并选择时长。",
    ),
    "problem_snooze": ("Choose how long to snooze the alert.", "请选择暂停提醒的时长。"),
    "status_done_acknowledge": ("Alert {id} acknowledged.", "告警 {id} 已确认。"),
    "status_done_resolve": ("Alert {id} resolved.", "告警 {id} 已处理完毕。"),
    "status_done_snooze": ("Alert {id} snoozed.", "告警 {id} 已暂停提醒。"),
    "status_done_shelve": ("Alert {id} shelved.", "告警 {id} 已搁置。"),
    "status_done_escalate": ("Alert {id} escalated.", "告警 {id} 已升级。"),
    "status_no_change": ("Alert {id}: no change.", "告警 {id}：没有变化。"),
    "patient_title": ("Patient", "患者"),
    "range": ("Range", "时间范围"),
    "range_24h": ("24 hours", "24 小时"),
    "range_days": ("{n} days", "{n} 天"),
    "summary": ("Summary", "概要"),
    "home_bp_mean": ("Home BP, 7-day mean", "家庭血压 7 天平均值"),
    "target_lt": ("Target <", "目标 <"),
    "above_target": ("above target", "高于目标"),
    "at_target": ("at target", "达到目标"),
    "bp_readings_days": ("{n} readings on {d} days", "{d} 天内共 {n} 次测量"),
    "bp_not_assessable": (
        "fewer than 12 readings over 3 days: not yet a valid home mean",
        "3 天内少于 12 次测量：尚不能计算有效的家庭血压平均值",
    ),
    "no_home_bp": ("No home BP readings in the last 7 days.", "最近 7 天没有家庭血压测量。"),
    "latest_readings": ("Latest readings", "最新测量"),
    "latest_caption": ("Newest reading per metric", "每项指标的最新测量"),
    "col_metric": ("Metric", "指标"),
    "col_value": ("Value", "数值"),
    "col_when": ("When", "时间"),
    "no_value_short": ("no value", "无数值"),
    "trends": ("Trends", "趋势"),
    "points": ("points", "个数据点"),
    "no_readings_range": ("No readings in this range.", "此时间范围内没有测量数据。"),
    "chart_label": (
        "{title} over the last {days} days: {n} points from {low} to {high} {unit}",
        "最近 {days} 天的{title}：{n} 个数据点，从 {low} 到 {high} {unit}",
    ),
    "recent_alerts": ("Recent alerts", "近期告警"),
    "chart_bp": ("Home blood pressure", "家庭血压（收缩压/舒张压）"),
    "chart_glucose": ("Glucose", "血糖"),
    "chart_weight": ("Weight", "体重"),
    "chart_spo2": ("SpO2", "血氧饱和度"),
    "chart_heart_rate": ("Heart rate", "心率"),
    "rule_settings": ("Rule settings", "规则设置"),
    "rules_saved": ("Rule settings saved.", "规则设置已保存。"),
    "rules_not_saved": ("The settings were not saved:", "设置未保存："),
    "rules_last_changed": ("Last changed {when} by {who}", "最近一次由 {who} 于 {when} 修改"),
    "rules_default": (
        "Default rules ({packs}); never changed for this patient.",
        "默认规则（{packs}）；未针对此患者修改过。",
    ),
    "rule_packs": ("Rule packs", "规则包"),
    "targets_legend": ("Targets (empty = the pack's default)", "目标值（留空 = 规则包默认值）"),
    "col_parameter": ("Parameter", "参数"),
    "col_patient_value": ("Patient's value", "患者的数值"),
    "col_default": ("Default", "默认值"),
    "col_meaning": ("Meaning", "含义"),
    "no_targets": (
        "The selected packs have no adjustable targets.",
        "所选规则包没有可调整的目标值。",
    ),
    "rules_off": ("Rules switched off for this patient", "对此患者关闭的规则"),
    "change_reason": (
        "Reason for the change (required, kept in the audit log)",
        "修改原因（必填，记入审计日志）",
    ),
    "save_rules": ("Save rule settings", "保存规则设置"),
    "followup_title": ("Follow-up metrics", "随访指标"),
    "months": ("Months", "月数"),
    "download_csv": ("Download as CSV", "下载 CSV"),
    "followup_caption": (
        "Per month since {start}: the clinic ({clinic}, {panel} patients) and each doctor who"
        " acted on an alert",
        "自 {start} 起按月统计：全诊所（{clinic}，{panel} 名患者）及每位处理过告警的医生",
    ),
    "followup_clinic": ("all doctors", "全体医生"),
    "fu_col_month": ("Month", "月份"),
    "fu_col_doctor": ("Doctor", "医生"),
    "fu_col_acted": ("Alerts acted on", "已处理告警数"),
    "fu_col_tta_median": ("Time to acknowledge, median (min)", "确认用时中位数（分钟）"),
    "fu_col_tta_p90": ("90th percentile (min)", "第 90 百分位（分钟）"),
    "fu_col_urgent": ("Urgent alerts in time", "及时处理的紧急告警"),
    "fu_col_follow_ups": ("Follow-ups", "随访次数"),
    "fu_col_per_patient": ("Follow-ups per contracted patient", "每名签约患者的随访次数"),
    "fu_col_burden": ("Alerts per patient-day", "每患者日告警数"),
    "fu_urgent_of": ("{n} of {total} ({pct} %)", "{total} 条中 {n} 条（{pct}%）"),
    "fu_per_patient": ("{value} ({n} patients)", "{value}（{n} 名患者）"),
    "fu_contracts_unknown": ("(contracts unknown)", "（签约情况未知）"),
    "fu_burden_detail": ("({n} in {days} patient-days)", "（{days} 患者日内 {n} 条）"),
    "fu_empty": ("No alerts or readings in this period.", "此期间没有告警或测量数据。"),
    "fu_how_heading": ("How these are counted", "统计方法"),
    "fu_how_tta": (
        "Time to acknowledge: from when the alert reached the system to the first"
        " acknowledgement or resolution by a person.",
        "确认用时：从告警到达系统到第一次由人确认或处理完毕的时间。",
    ),
    "fu_how_urgent": (
        "Urgent in time: high and critical alerts acknowledged or resolved within the"
        " escalation delay ({high} min; {critical} min for critical). The clinic row also counts"
        " urgent alerts nobody answered once their delay has passed.",
        "及时处理的紧急告警：在升级时限内（{high} 分钟；危急告警 {critical} 分钟）"
        "被确认或处理完毕的高级和危急告警。全诊所一行还把超过时限仍无人处理的紧急告警计入。",
    ),
    "fu_how_follow_ups": (
        "Follow-ups: acknowledgements and resolutions with a note. There is no separate"
        " follow-up record yet, so a noted acknowledgement or resolution is what counts.",
        "随访：带备注的确认或处理完毕。目前还没有单独的随访记录，因此以带备注的确认或处理完毕计数。",
    ),
    "fu_how_burden": (
        "Alerts per patient-day: alerts raised in the month over the observed time (first to"
        " last reading in the month) of the patients concerned.",
        "每患者日告警数：当月产生的告警数除以相关患者的观察时间（当月第一次到最后一次测量）。",
    ),
    # chart legends and reference lines (static/charts.js draws what the page gives it)
    "legend_time": ("time", "时间"),
    "legend_bp_systolic": ("systolic", "收缩压"),
    "legend_bp_diastolic": ("diastolic", "舒张压"),
    "legend_glucose": ("glucose", "血糖"),
    "legend_weight": ("weight", "体重"),
    "legend_spo2": ("SpO2", "血氧饱和度"),
    "legend_heart_rate": ("heart rate", "心率"),
    "line_target_systolic": ("target systolic {v}", "收缩压目标 {v}"),
    "line_target_diastolic": ("target diastolic {v}", "舒张压目标 {v}"),
    "line_mean_systolic": ("7-day mean systolic {v}", "7 天平均收缩压 {v}"),
    "line_mean_diastolic": ("7-day mean diastolic {v}", "7 天平均舒张压 {v}"),
    "line_spo2_target_low": ("target low {v}", "目标下限 {v}"),
    # ECG reports as the requesting team sees them (the patient page)
    "nav_ecg": ("ECG reading", "心电图判读"),
    "ecg_reports_heading": ("ECG reports", "心电图报告"),
    "ecg_reports_caption": (
        "Reports on this patient's ECG snippets, newest first",
        "此患者心电图片段的判读报告（最新在前）",
    ),
    "ecg_col_recorded": ("Recorded", "记录时间"),
    "ecg_col_rhythm": ("Rhythm", "心律"),
    "ecg_col_findings": ("Findings", "所见"),
    "ecg_col_text": ("Report text", "报告内容"),
    "ecg_col_reader": ("Reported by", "判读人"),
    "ecg_no_reports": ("No ECG reports for this patient.", "此患者暂无心电图报告。"),
    # CGM pages (docs/web.md): the patient's daily report and the doctor's AGP page
    "cgm_link": ("My glucose day (CGM)", "我的每日血糖报告（CGM）"),
    "cgm_me_title": ("My glucose day", "我的每日血糖报告"),
    "cgm_me_intro": (
        "Your sensor's readings for one day, and how much of the day your glucose stayed in"
        " the target range (3.9–10.0 mmol/L).",
        "这里显示传感器一天的读数，以及一天中血糖保持在目标范围（3.9–10.0 mmol/L）内的时间。",
    ),
    "cgm_day_label": ("Day", "日期"),
    "cgm_prev_day": ("Previous day", "前一天"),
    "cgm_next_day": ("Next day", "后一天"),
    "cgm_no_data": ("No sensor readings on this day.", "这一天没有传感器读数。"),
    "cgm_tir_plain": (
        "Time in target range (3.9–10.0 mmol/L)",
        "在目标范围内的时间（3.9–10.0 mmol/L）",
    ),
    "cgm_tbr_plain": ("Time too low (below 3.9 mmol/L)", "血糖过低的时间（低于 3.9 mmol/L）"),
    "cgm_tbr_level2_plain": (
        "Time very low (below 3.0 mmol/L)",
        "血糖严重过低的时间（低于 3.0 mmol/L）",
    ),
    "cgm_tar_plain": ("Time too high (above 10.0 mmol/L)", "血糖过高的时间（高于 10.0 mmol/L）"),
    "cgm_tar_level2_plain": (
        "Time very high (above 13.9 mmol/L)",
        "血糖严重过高的时间（高于 13.9 mmol/L）",
    ),
    "cgm_cv_plain": ("How much your glucose swings (CV)", "血糖波动（变异系数）"),
    "cgm_mean_plain": ("Average glucose", "平均血糖"),
    "cgm_gmi_plain": ("Estimated HbA1c (GMI)", "估算糖化血红蛋白（GMI）"),
    "cgm_goal_>": ("goal: more than {target} %", "目标：高于 {target}%"),
    "cgm_goal_<": ("goal: less than {target} %", "目标：低于 {target}%"),
    "cgm_goal_<=": ("goal: {target} % or less", "目标：不超过 {target}%"),
    "cgm_met": ("goal met", "达到目标"),
    "cgm_not_met": ("goal not met", "未达到目标"),
    "cgm_hours": ("about {h} h {m} min of the day", "约占一天中的 {h} 小时 {m} 分钟"),
    "cgm_day_coverage": (
        "The sensor recorded {pct} % of the day.",
        "传感器记录了当天 {pct}% 的时间。",
    ),
    "cgm_day_coverage_low": (
        "Less than 70 % of the day was recorded: read these numbers with care.",
        "当天记录不足 70%，以上数字仅供参考。",
    ),
    "cgm_week": ("The last 7 days: time in target range", "最近 7 天：在目标范围内的时间"),
    "cgm_day_chart_label": (
        "Glucose on {day}: {n} readings from {low} to {high} mmol/L",
        "{day} 的血糖：{n} 个读数，从 {low} 到 {high} mmol/L",
    ),
    "cgm_doctor_title": ("CGM: ambulatory glucose profile", "CGM：动态葡萄糖图谱（AGP）"),
    "cgm_period": ("Last {days} days: {start} to {end}", "最近 {days} 天：{start} 至 {end}"),
    "cgm_population": ("Targets for", "目标人群"),
    "cgm_pop_standard": ("adults with type 1 or type 2 diabetes", "1 型或 2 型糖尿病成人"),
    "cgm_pop_older_high_risk": ("older or high-risk adults", "老年或高风险成人"),
    "cgm_metric": ("Metric", "指标"),
    "cgm_target": ("Target", "目标"),
    "cgm_value": ("Value", "数值"),
    "cgm_verdict": ("Met?", "是否达标"),
    "cgm_m_tir": ("Time in range (TIR) 3.9–10.0 mmol/L", "目标范围内时间（TIR）3.9–10.0 mmol/L"),
    "cgm_m_tbr": ("Time below range (TBR) < 3.9 mmol/L", "低于目标范围时间（TBR）< 3.9 mmol/L"),
    "cgm_m_tbr_level2": ("TBR level 2 < 3.0 mmol/L", "2 级低血糖时间 < 3.0 mmol/L"),
    "cgm_m_tar": ("Time above range (TAR) > 10.0 mmol/L", "高于目标范围时间（TAR）> 10.0 mmol/L"),
    "cgm_m_tar_level2": ("TAR level 2 > 13.9 mmol/L", "2 级高血糖时间 > 13.9 mmol/L"),
    "cgm_m_cv": ("Coefficient of variation (CV)", "变异系数（CV）"),
    "cgm_m_gmi": ("Glucose management indicator (GMI)", "葡萄糖管理指标（GMI）"),
    "cgm_m_mean": ("Mean glucose", "平均血糖"),
    "cgm_met_short": ("met", "达标"),
    "cgm_not_met_short": ("not met", "未达标"),
    "cgm_coverage": (
        "{samples} readings: {pct} % of {days} days of sensor data, on {with_data} days.",
        "{samples} 个读数：占 {days} 天应有传感器数据的 {pct}%，分布在 {with_data} 天。",
    ),
    "cgm_insufficient": (
        "Less than 70 % of the period has data: not representative (Battelino 2019).",
        "数据不足该时段的 70%：不具代表性（Battelino 2019）。",
    ),
    "cgm_agp_heading": ("Ambulatory glucose profile", "动态葡萄糖图谱"),
    "cgm_agp_caption": (
        "{days} days folded onto one day, per {slot} min: median, 25–75 % and 5–95 % bands;"
        " dashed lines at 3.9 and 10.0 mmol/L.",
        "{days} 天的读数叠加到一天，每 {slot} 分钟：中位数、25–75% 和 5–95% 区间；"
        "虚线为 3.9 和 10.0 mmol/L。",
    ),
    "cgm_agp_label": (
        "Ambulatory glucose profile: the median runs from {low} to {high} mmol/L over the day",
        "动态葡萄糖图谱：一天中中位数从 {low} 到 {high} mmol/L",
    ),
    "cgm_daily_heading": ("Day by day", "每日指标"),
    "cgm_date": ("Date", "日期"),
    "cgm_readings": ("Readings", "读数"),
    "cgm_coverage_col": ("Coverage", "数据覆盖"),
    "cgm_missed": ("Targets missed", "未达标项"),
    "cgm_none_missed": ("none", "无"),
    "cgm_back": ("Back to the patient page", "返回患者页面"),
    "cgm_open": ("CGM: glucose profile (AGP)", "CGM：动态葡萄糖图谱"),
    "cgm_sources": (
        "Targets: international consensus on time in range (Battelino et al., Diabetes Care"
        " 2019). GMI: Bergenstal et al., Diabetes Care 2018.",
        "目标：国际 TIR 共识（Battelino 等，Diabetes Care 2019）。GMI：Bergenstal 等，"
        "Diabetes Care 2018。",
    ),
    "cgm_no_data_period": ("No glucose readings in this period.", "此期间没有血糖读数。"),
    "cgm_p5": ("5th percentile", "第 5 百分位"),
    "cgm_p25": ("25th percentile", "第 25 百分位"),
    "cgm_median": ("median", "中位数"),
    "cgm_p75": ("75th percentile", "第 75 百分位"),
    "cgm_p95": ("95th percentile", "第 95 百分位"),
    "cgm_range_low": ("range low 3.9", "下限 3.9"),
    "cgm_range_high": ("range high 10.0", "上限 10.0"),
    # the patient's FHIR export
    "export_fhir_help": (
        "Or as a FHIR R4 Bundle (JSON) for another clinic or a health app: choose the period.",
        "或导出为 FHIR R4 数据包（JSON），可交给其他医疗机构或健康应用：请选择时间段。",
    ),
    "export_from": ("From", "开始日期"),
    "export_to": ("To", "结束日期"),
    "export_fhir_button": ("Download (FHIR JSON)", "下载（FHIR JSON）"),
    "export_too_many": (
        "Too many readings for one file. Please choose a shorter period.",
        "读数过多，无法放入一个文件，请选择较短的时间段。",
    ),
    "export_bad_period": (
        "Please choose a start date on or before the end date, at most one year apart.",
        "开始日期不能晚于结束日期，且时间段不能超过一年。",
    ),
    # rule-settings problems and the rule list (web/rule_settings.py)
    "rules_unknown_packs": ("unknown packs: {packs}", "未知的规则包：{packs}"),
    "rules_choose_pack": ("choose at least one rule pack", "请至少选择一个规则包"),
    "rules_not_a_number": ("{name}: not a number", "{name}：不是有效数字"),
    "rules_reason_short": (
        "a reason of at least {n} characters is required",
        "修改原因至少需要 {n} 个字符",
    ),
    "rules_reason_long": (
        "the reason is longer than {n} characters",
        "修改原因超过 {n} 个字符",
    ),
    # ECG reading pages (queue, reader, report form) and the report as others see it
    "ecg_title": ("ECG reading", "心电图判读"),
    "ecg_reported_notice": (
        "Report saved for snippet {id}.",
        "片段 {id} 的报告已保存。",
    ),
    "ecg_waiting_caption": (
        "Awaiting a report, newest first ({n})",
        "待判读，最新在前（{n} 条）",
    ),
    "ecg_waiting_caption_limited": (
        "Awaiting a report, newest first ({n}, the newest {limit} shown)",
        "待判读，最新在前（{n} 条，仅显示最新 {limit} 条）",
    ),
    "ecg_col_patient": ("Patient", "患者"),
    "ecg_col_from": ("From", "来源"),
    "ecg_col_lead": ("Lead", "导联"),
    "ecg_col_length": ("Length", "时长"),
    "ecg_col_device": ("Device", "设备"),
    "ecg_col_open": ("Open", "打开"),
    "ecg_col_reader_short": ("Reader", "判读人"),
    "ecg_col_reported": ("Reported", "报告时间"),
    "ecg_from_ambulance": ("Ambulance", "救护车"),
    "ecg_from_ambulance_incident": ("Ambulance (incident", "救护车（急救事件"),
    "close_paren": (")", "）"),
    "ecg_from_home": ("Home", "居家"),
    "ecg_read": ("Read", "判读"),
    "ecg_read_snippet": (" snippet {id}", "片段 {id}"),
    "ecg_queue_empty": ("No ECG is waiting for a report.", "没有待判读的心电图。"),
    "ecg_latest_reports": ("Latest reports", "最新报告"),
    "ecg_latest_caption": ("The {n} latest reports", "最新的 {n} 份报告"),
    "ecg_no_reports_yet": ("No reports yet.", "暂无报告。"),
    "ecg_snippet_title": ("ECG", "心电图"),
    "ecg_heading": ("ECG lead {lead}", "心电图 {lead} 导联"),
    "ecg_recorded": ("Recorded", "记录于"),
    "ecg_origin_ambulance": ("ambulance, incident", "救护车，急救事件"),
    "ecg_origin_home": ("home", "居家"),
    "ecg_device": ("device", "设备"),
    "ecg_length_rate": ("{s} s at {hz} Hz", "{s} 秒，采样率 {hz} Hz"),
    "ecg_quality_flags": ("quality flags: {flags}", "质量标记：{flags}"),
    "ecg_screening": ("Rhythm screening (automatic)", "心律自动筛查"),
    "ecg_beats_found": ("Beats found:", "检出心搏："),
    "ecg_median_hr": ("median heart rate", "心率中位数"),
    "ecg_no_annotations": (
        "The stored snippet has no beat annotations; R peaks were found by a simplified"
        " Pan–Tompkins detector (Pan & Tompkins 1985).",
        "存储的片段没有心搏标注；R 波由简化的 Pan–Tompkins 检测算法识别（Pan & Tompkins 1985）。",
    ),
    "ecg_not_enough": ("Not enough data", "数据不足"),
    "ecg_not_enough_detail": (
        " for the AF detector: it needs at least {n} beats with plausible intervals.",
        "，无法进行房颤检测：至少需要 {n} 个间期合理的心搏。",
    ),
    "ecg_af_found": (
        "AF detector: irregular rhythm suggestive of atrial fibrillation",
        "房颤检测：节律不规则，提示心房颤动",
    ),
    "ecg_af_found_detail": (
        " over {pct} % of {s} s analysed.",
        "，占已分析 {s} 秒中的 {pct}%。",
    ),
    "ecg_no_af": ("AF detector: no atrial fibrillation found", "房颤检测：未发现心房颤动"),
    "ecg_no_af_detail": (" in {s} s analysed.", "（已分析 {s} 秒）。"),
    "ecg_detector_hint": (
        "The detector (Petrėnas, Marozas & Sörnmo 2015, with a COSEn check) was built and"
        " tested on long records; on a strip of a few seconds its finding is a prompt for the"
        " reader, not a diagnosis.",
        "该检测算法（Petrėnas、Marozas & Sörnmo 2015，附 COSEn 校验）是在长时程记录上建立和"
        "验证的；对于仅数秒的心电图条带，其结果只是提醒判读医生注意，不能作为诊断。",
    ),
    "ecg_report": ("Report", "报告"),
    "ecg_rhythm": ("Rhythm", "心律"),
    "ecg_findings": ("Findings", "所见"),
    "ecg_text": ("Text", "报告内容"),
    "ecg_reported_by": ("Reported by", "判读人"),
    "ecg_none": ("none", "无"),
    "ecg_choose": ("– choose –", "– 请选择 –"),
    "ecg_report_text": ("Report text", "报告内容"),
    "ecg_file_report": ("File the report", "提交报告"),
    "ecg_paper_caption": (
        "Lead {lead}, {s} s on standard ECG paper: {mm_s} mm/s, {mm_mv} mm/mV; small squares"
        " 1 mm (0.04 s, 0.1 mV), large squares 5 mm (0.2 s, 0.5 mV). The pulse at the start of"
        " each row is the 1 mV calibration. True size when printed at 100 %; on screen the"
        " grid is the measure.",
        "{lead} 导联，{s} 秒，标准心电图纸：走纸速度 {mm_s} mm/s，增益 {mm_mv} mm/mV；"
        "小格 1 mm（0.04 秒，0.1 mV），大格 5 mm（0.2 秒，0.5 mV）。每行起始的方波为 1 mV 定标。"
        "按 100% 打印时为实际大小；屏幕上请以网格为准。",
    ),
    "ecg_problem_rhythm": ("Choose the rhythm.", "请选择心律。"),
    "ecg_problem_finding": ("Unknown finding.", "未知的所见。"),
    "ecg_problem_other": (
        "Describe the rhythm in the report text.",
        "请在报告内容中描述该心律。",
    ),
    "ecg_problem_long": (
        "The report text is longer than {n} characters.",
        "报告内容超过 {n} 个字符。",
    ),
    "ecg_rhythm_sinus": ("Sinus rhythm", "窦性心律"),
    "ecg_rhythm_sinus_bradycardia": ("Sinus bradycardia", "窦性心动过缓"),
    "ecg_rhythm_sinus_tachycardia": ("Sinus tachycardia", "窦性心动过速"),
    "ecg_rhythm_af": ("Atrial fibrillation", "心房颤动（房颤）"),
    "ecg_rhythm_flutter": ("Atrial flutter", "心房扑动（房扑）"),
    "ecg_rhythm_svt": ("Other supraventricular tachycardia", "其他室上性心动过速"),
    "ecg_rhythm_vt": ("Ventricular tachycardia", "室性心动过速"),
    "ecg_rhythm_paced": ("Paced rhythm", "起搏心律"),
    "ecg_rhythm_other": ("Other (describe below)", "其他（请在下方描述）"),
    "ecg_rhythm_uninterpretable": (
        "Not interpretable (noise, lead off)",
        "无法判读（干扰、导联脱落）",
    ),
    "ecg_finding_pvc": ("Ventricular ectopics", "室性早搏"),
    "ecg_finding_pac": ("Supraventricular ectopics", "室上性早搏"),
    "ecg_finding_av_block": ("AV block", "房室传导阻滞"),
    "ecg_finding_bundle_branch_block": ("Bundle branch block", "束支传导阻滞"),
    "ecg_finding_st_elevation": ("ST elevation", "ST 段抬高"),
    "ecg_finding_st_depression": ("ST depression", "ST 段压低"),
    "ecg_finding_t_inversion": ("T-wave inversion", "T 波倒置"),
    "ecg_finding_long_qt": ("Long QT", "QT 间期延长"),
    "ecg_finding_pause": ("Pause", "停搏"),
    "ecg_finding_artefact": ("Artefact", "伪差"),
    # the ER board and incident pages
    "nav_er_board": ("ER board", "急诊看板"),
    "er_board_title": ("ER board", "急诊看板"),
    "er_incoming": ("Incoming ambulances", "即将到达的救护车"),
    "er_board_hint": (
        "Open incidents first, soonest arrival first; then the handovers of the last 24 hours."
        " A team's pre-alert stays <strong>unacknowledged</strong> until someone of the team"
        ' confirms it. "Last data" turns amber after {amber} s and red after {red} s without'
        " a reading (a dead zone, or the monitor is off).",
        "进行中的急救事件在前，预计最早到达的在前；其后是最近 24 小时内已交接的事件。"
        "团队的预警在团队成员确认之前一直显示为<strong>未确认</strong>。"
        "“最近数据”超过 {amber} 秒没有新读数变为琥珀色，超过 {red} 秒变为红色"
        "（信号盲区，或监护仪已关闭）。",
    ),
    "er_board_caption": ("Incoming ambulance incidents", "即将到达的救护车急救事件"),
    "er_col_incident": ("Incident", "急救事件"),
    "er_col_pathway": ("Pathway", "救治通道"),
    "er_col_teams": ("Teams pre-alerted", "已预警的团队"),
    "er_col_eta": ("ETA", "预计到达"),
    "er_col_last_data": ("Last data", "最近数据"),
    "er_col_status": ("Status", "状态"),
    "er_incident_n": ("Incident {id}", "急救事件 {id}"),
    "er_incident": ("Incident", "急救事件"),
    "er_crew": ("(crew)", "（急救人员判断）"),
    "er_acknowledged_at": ("acknowledged {t}", "已于 {t} 确认"),
    "er_not_acknowledged": ("not acknowledged", "未确认"),
    "er_not_sent": ("not sent", "未发送"),
    "er_none_activated": ("none activated", "未启动"),
    "er_in_min": ("in {m} min", "{m} 分钟后"),
    "er_overdue_min": ("{m} min overdue", "已超时 {m} 分钟"),
    "er_en_route": ("en route", "途中"),
    "er_handed_over_at": ("handed over {t}", "已于 {t} 交接"),
    "er_no_incoming": ("No incoming ambulances.", "没有即将到达的救护车。"),
    "er_ambulance": ("ambulance", "救护车"),
    "er_patient": ("patient", "患者"),
    "er_unidentified": ("(unidentified, temporary id)", "（身份未明，临时编号）"),
    "er_pathway_crew": ("Pathway (crew)", "救治通道（急救人员判断）"),
    "er_eta": ("ETA", "预计到达"),
    "er_handed_over": ("Handed over", "交接时间"),
    "er_vitals_live": ("Vitals update live", "生命体征实时更新"),
    "er_latest_values": ("Latest values", "最新数值"),
    "er_no_value": ("no value ({why})", "无数值（{why}）"),
    "er_no_readings": ("No readings from this ambulance yet.", "暂未收到该救护车的读数。"),
    "er_trends": ("Trends since the call", "呼救以来的趋势"),
    "er_chart_label": (
        "{title}: {n} points from {low} to {high} {unit}",
        "{title}：{n} 个数据点，从 {low} 到 {high} {unit}",
    ),
    "er_latest_ecg": ("Latest ECG", "最新心电图"),
    "er_ecg_taken": ("Lead {lead}, taken {t}", "{lead} 导联，采集于 {t}"),
    "er_ecg_strip_report": ("the strip and its report", "心电图条带及报告"),
    "er_ecg_not_reported": ("not reported yet", "尚未判读"),
    "er_ecg_read_report": ("read and report this ECG", "判读此心电图并出具报告"),
    "er_atmist": ("ATMIST handover", "ATMIST 交接"),
    "er_atmist_age": ("A · Age", "A · 年龄"),
    "er_atmist_onset": ("T · Time of onset", "T · 发病时间"),
    "er_atmist_mechanism": ("M · Mechanism / complaint", "M · 致伤机制 / 主诉"),
    "er_atmist_injuries": ("I · Injuries / information", "I · 伤情 / 信息"),
    "er_atmist_signs": ("S · Signs", "S · 生命体征"),
    "er_atmist_treatment": ("T · Treatment", "T · 已给予的处置"),
    "er_no_atmist": ("The crew has not sent an ATMIST yet.", "急救人员尚未发送 ATMIST。"),
    "er_sbar_situation": ("Situation", "现状（S）"),
    "er_sbar_background": ("Background", "背景（B）"),
    "er_sbar_assessment": ("Assessment", "评估（A）"),
    "er_sbar_recommendation": ("Recommendation", "建议（R）"),
    "er_prealerts": ("Pre-alerts", "预警"),
    "er_no_pathway": ("No pathway activated (yet).", "（尚）未启动任何救治通道。"),
    "er_timeline": ("Timeline", "时间线"),
    "er_handoff_bundle": ("Handoff Bundle", "交接数据包"),
    "er_handoff_sent": ("sent {t}", "已于 {t} 发送"),
    "er_handoff_receipt": ("{status} by {who}", "{who}：{status}"),
    "er_fhir_bundle": ("FHIR Bundle (JSON)", "FHIR 数据包（JSON）"),
    "er_activated": (
        "{pathway} pathway, activated {t}",
        "{pathway}通道，启动于 {t}",
    ),
    "er_not_checked": ("Not checked: {items}", "未核查：{items}"),
    "er_deadline": ("Deadline {t}", "时限 {t}"),
    "er_sent_by": (
        "Sent by {channel} at {t} ({status}, {ms} ms after the finding)",
        "已于 {t} 通过 {channel} 发送（{status}，判定后 {ms} 毫秒）",
    ),
    "er_not_sent_er": (
        "Not sent to the ER: no notification channel was configured.",
        "未发送至急诊：未配置通知渠道。",
    ),
    "er_acknowledged": ("Acknowledged", "已确认"),
    "er_acknowledged_by": ("by {who} at {t}", "确认人 {who}，时间 {t}"),
    "er_not_acknowledged_strong": ("Not acknowledged", "未确认"),
    "er_ack_for": ("Acknowledge for the {team}", "代表{team}确认"),
    "er_ack_done": ("{team}: pre-alert acknowledged.", "{team}：预警已确认。"),
    "er_ack_no_change": ("{team}: no change.", "{team}：没有变化。"),
    "er_no_data_yet": ("no data yet", "暂无数据"),
    "er_no_value_short": ("no value", "无数值"),
    "er_series_systolic": ("systolic", "收缩压"),
    "er_series_diastolic": ("diastolic", "舒张压"),
    "er_last_data_s": ("last data {n} s ago", "最近数据：{n} 秒前"),
    "er_last_data_min": ("last data {n} min ago", "最近数据：{n} 分钟前"),
    "er_last_data_h": ("last data {n} h ago", "最近数据：{n} 小时前"),
    "er_team_stroke_team": ("Stroke team", "卒中团队"),
    "er_team_cath_lab": ("Cath lab", "导管室"),
    "er_team_trauma_team": ("Trauma team", "创伤团队"),
    "er_team_obstetric_team": ("Obstetric team", "产科团队"),
    "er_team_sepsis_team": ("Sepsis team", "脓毒症团队"),
    "er_pathway_stroke": ("Stroke", "卒中"),
    "er_pathway_stemi": ("STEMI / chest pain", "STEMI / 胸痛"),
    "er_pathway_trauma": ("Trauma", "创伤"),
    "er_pathway_maternal": ("Maternal", "孕产妇"),
    "er_pathway_sepsis": ("Sepsis", "脓毒症"),
    "er_step_call": ("Call", "呼救"),
    "er_step_on_scene": ("On scene", "到达现场"),
    "er_step_depart": ("Departed scene", "离开现场"),
    "er_step_eta": ("ETA", "预计到达"),
    "er_step_arrival": ("Arrived", "到达医院"),
    "er_step_handover": ("Handed over", "完成交接"),
    "er_chart_heart_rate": ("Heart rate", "心率"),
    "er_chart_spo2": ("SpO2", "血氧饱和度"),
    "er_chart_bp": ("Blood pressure (NIBP)", "血压（无创）"),
    "er_chart_respiratory_rate": ("Respiratory rate", "呼吸频率"),
    "er_chart_etco2": ("EtCO2", "呼气末二氧化碳"),
    "er_metric_heart_rate": ("heart rate", "心率"),
    "er_metric_spo2": ("spo2", "血氧饱和度"),
    "er_metric_bp_systolic": ("bp systolic", "收缩压"),
    "er_metric_bp_diastolic": ("bp diastolic", "舒张压"),
    "er_metric_respiratory_rate": ("respiratory rate", "呼吸频率"),
    "er_metric_etco2": ("etco2", "呼气末二氧化碳"),
    "er_metric_body_temperature": ("body temperature", "体温"),
    "er_metric_pulse_rate": ("pulse rate", "脉率"),
    "er_metric_glucose": ("glucose", "血糖"),
    # status messages of static/app.js and static/er.js (given to them by base.html)
    "js_done": ("Done.", "已完成。"),
    "js_failed": (
        "The action failed (HTTP {code}). Reload the page and try again.",
        "操作失败（HTTP {code}）。请刷新页面后重试。",
    ),
    "js_unreachable": (
        "The server could not be reached. Check the connection and try again.",
        "无法连接服务器。请检查网络连接后重试。",
    ),
    "js_reload_alerts": ("Reload the page for new alerts.", "请刷新页面查看新告警。"),
    "js_patients_updated": ("The patient list was updated.", "患者列表已更新。"),
    "js_live_stopped": ("Live updates stopped; reload the page.", "实时更新已停止，请刷新页面。"),
    "js_reload_incidents": ("Reload the page for new incidents.", "请刷新页面查看新的急救事件。"),
    "js_board_updated": ("The board was updated.", "看板已更新。"),
    "js_reload_vitals": ("Reload the page for new vitals.", "请刷新页面查看新的生命体征。"),
    "js_prealerts_changed": ("Pre-alerts or timeline changed.", "预警或时间线有变化。"),
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


def choose_lang(
    query: str | None,
    cookie: str | None,
    accept_language: str | None,
    default: Lang = DEFAULT_LANG,
) -> Lang:
    """The query wins, then the cookie, then the browser's first supported language, then
    ``default`` (Chinese; the clinician pages pass English, their language before)."""
    for candidate in (query, cookie):
        chosen = as_lang(candidate)
        if chosen is not None:
            return chosen
    for part in (accept_language or "").split(","):
        chosen = as_lang(part.split(";")[0])
        if chosen is not None:
            return chosen
    return default


def translate(lang: Lang, key: str, **values: object) -> str:
    """The message ``key`` in ``lang`` with ``{name}`` filled; an unknown key shows itself."""
    entry = CATALOGUE.get(key)
    if entry is None:
        return key
    text = entry[lang]
    return text.format(**values) if values else text
