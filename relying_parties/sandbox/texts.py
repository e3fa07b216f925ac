"""What the sandbox relying parties' pages say, in Traditional Chinese (default) and English.

A bank's or a school's web site is not part of the platform and does not share its message
catalogue: each sandbox RP carries its own texts, side by side in both languages so that a reviewer
reads them together. The bank's and the school's own texts are in bank.py and school.py.
"""

from __future__ import annotations

from collections.abc import Mapping

LANGUAGES = ("zh", "en")
#: BCP 47 tags: for the page's `lang` attribute, and `ui_locales` (OpenID Connect Core §3.1.2.1).
LANGUAGE_TAGS = {"zh": "zh-TW", "en": "en"}
LANGUAGE_NAMES = {"zh": "中文", "en": "English"}

Texts = Mapping[str, tuple[str, str]]

COMMON: Texts = {
    "skip": ("跳至主要內容", "Skip to main content"),
    "sandbox_note": (
        "沙盒環境：本網站是 MyData 平台的示範服務提供者，所有人物與資料皆為虛構。",
        "Sandbox: this site is a demonstration relying party of the MyData platform; "
        "every person and record is made up.",
    ),
    "language": ("語言", "Language"),
    "with_mydata": ("使用 MyData 申辦", "Apply with MyData"),
    "how_title": ("使用 MyData 怎麼做？", "How does applying with MyData work?"),
    "how_1": (
        "按下「使用 MyData 申辦」後，您會前往 MyData 平台，以自然人憑證、行動自然人憑證或健保卡登入。",
        "Press “Apply with MyData”: you go to the MyData platform and log in with your eID card, "
        "mobile ID or NHI card.",
    ),
    "how_2": (
        "MyData 會列出我們請求的資料、用途與保存期限，由您決定是否同意。",
        "MyData shows which data we ask for, why, and how long we keep it; you decide whether to agree.",
    ),
    "how_3": (
        "您同意後，MyData 直接向各機關取得資料，加密後僅傳送給我們一次；您不必再上傳任何證明文件。",
        "Once you agree, MyData fetches the data from the agencies and sends it to us once, encrypted; "
        "you upload no documents.",
    ),
    "we_ask_for": ("我們會請求的資料", "The data we ask for"),
    "optional": ("（選擇性，由您決定）", "(optional, your choice)"),
    "personas_title": ("沙盒測試身分", "Sandbox personas"),
    "personas": (
        "可用 A123456789（王小明）或 B223456782（林美華）登入，自然人憑證 PIN 碼 123456。",
        "Log in as A123456789 (王小明) or B223456782 (林美華); the eID card PIN is 123456.",
    ),
    "start_again": ("重新申辦", "Start again"),
    "back_to_start": ("回到申辦首頁", "Back to the application page"),
    # The result page.
    "received_title": ("已收到您的資料", "We have received your data"),
    "received_lead": (
        "以下資料由 MyData 自各機關取得，經簽章驗證無誤。承辦人員將據以審核您的申請。",
        "MyData fetched the data below from the agencies, and every signature verified. "
        "Our staff will assess your application with it.",
    ),
    "summary": ("申請摘要", "Summary"),
    "verified_title": ("我們驗證了什麼", "What we verified"),
    "check.id_token": ("ID Token（身分權杖）", "ID token"),
    "check.jwe": ("資料包加密（JWE）", "Package encryption (JWE)"),
    "check.package": ("MyData 平台簽章（JWS）", "MyData platform signature (JWS)"),
    "check.provider": ("機關簽章", "Agency signature"),
    "check.login": ("民眾登入方式", "How the citizen logged in"),
    "transaction": ("交易編號（txn）", "Transaction (txn)"),
    "receipt": ("同意收據編號", "Consent receipt"),
    "received_at": ("收件時間", "Received at"),
    "generated_at": ("機關產製時間", "Issued by the agency at"),
    "provider": ("資料提供機關", "Provided by"),
    "status.ok": ("已取得", "received"),
    "status.no_record": ("查無資料", "no record"),
    "status.unavailable": ("暫時無法取得", "unavailable"),
    "status.not_granted": ("未同意提供", "not shared"),
    "no_record_text": ("該機關查無您的此項資料。", "The agency holds no record of this for you."),
    "unavailable_text": ("該機關暫時無法提供此項資料。", "The agency could not provide this for now."),
    "not_granted_text": ("您未同意提供此項資料。", "You chose not to share this."),
    "none": ("無", "none"),
    # Refusals and errors.
    "denied_title": ("您未同意提供資料", "You did not agree to share your data"),
    "denied_text": (
        "沒有任何資料傳送給我們。您可以重新以 MyData 申辦，或改以臨櫃方式檢附文件申請。",
        "No data was sent to us. You can apply with MyData again, or apply at a branch with paper documents.",
    ),
    "waiting_title": ("部分機關暫時無法提供資料", "Some agencies cannot answer right now"),
    "waiting_text": (
        "您的同意仍然有效，但尚未傳送任何資料。請稍候再試；必須在同意後 10 分鐘內完成。",
        "Your consent still stands, but nothing was sent yet. Please try again shortly, "
        "within 10 minutes of your consent.",
    ),
    "outcome_dataset": ("資料", "Data"),
    "outcome": ("狀態", "Status"),
    "outcome.ok": ("可取得", "ready"),
    "outcome.no_record": ("查無資料", "no record"),
    "outcome.timeout": ("機關逾時未回應", "the agency did not answer in time"),
    "outcome.unavailable": ("機關暫停服務", "the agency is unavailable"),
    "outcome.bad_signature": ("機關簽章驗證失敗", "the agency's signature did not verify"),
    "outcome.schema_violation": ("機關資料格式錯誤", "the agency's data was malformed"),
    "outcome.protocol_error": ("機關回應錯誤", "the agency answered with an error"),
    "retry": ("再試一次", "Try again"),
    "retry_at": ("請於 {time} 後再試（約 {seconds} 秒）。", "Please try again after {time} (in about {seconds} s)."),
    "retry_too_soon": ("還不能重試：請稍候。", "Too soon to try again: please wait a little."),
    "error_title": ("無法完成申辦", "We could not complete your application"),
    "error.consent_expired": (
        "您同意後的 10 分鐘傳送期限已過，資料未傳送。請重新申辦。",
        "The 10-minute delivery window after your consent has passed; nothing was sent. Please start again.",
    ),
    "error.consent_revoked": (
        "您已在 MyData 撤回此次同意，資料未傳送。",
        "You withdrew this consent on MyData; nothing was sent.",
    ),
    "error.already_delivered": (
        "此次同意的資料已傳送過一次，不能再次取得。如需重新送件，請重新申辦。",
        "The data of this consent was already delivered once and cannot be fetched again. Start again to re-apply.",
    ),
    "error.unauthorised": (
        "MyData 拒絕了我們的存取權杖：{detail}",
        "MyData refused our access token: {detail}",
    ),
    "error.verification_failed": (
        "收到的內容未通過驗證，我們不會使用：{detail}",
        "What we received did not verify, and we will not use it: {detail}",
    ),
    "error.session": (
        "找不到這次申辦（可能已逾時或在其他瀏覽器開始）。請重新申辦。",
        "We cannot find this application (it may have timed out, or started in another browser). Please start again.",
    ),
    "error.in_progress": (
        "此申辦尚未完成（仍在 MyData 等候您的同意，或正在取得資料）。請稍候重新整理，或重新申辦。",
        "This application is not finished yet (MyData is waiting for your answer, or we are collecting the data). "
        "Reload in a moment, or start again.",
    ),
    "error.not_configured": (
        "本服務尚未完成 MyData 串接設定：{detail}",
        "This service is not set up with MyData yet: {detail}",
    ),
    "error.other": ("MyData 回覆錯誤：{detail}", "MyData answered with an error: {detail}"),
    "error_code": ("錯誤代碼", "Error code"),
    # Dataset headings and labels (the data itself is in Traditional Chinese, as the agencies give it).
    "ds.household.registration": ("戶籍資料", "Household registration"),
    "ds.tax.income": ("綜合所得稅各類所得資料", "Income items (income tax)"),
    "ds.tax.property": ("財產歸屬資料", "Property"),
    "ds.labor.insurance": ("勞保投保資料", "Labour insurance"),
    "ds.nhi.enrolment": ("健保投保資料", "National Health Insurance"),
    "as_of": ("資料日期", "As of"),
    "household_number": ("戶號", "Household number"),
    "address": ("戶籍地址", "Registered address"),
    "moved_in_date": ("遷入日期", "Moved in"),
    "registration_office": ("戶政事務所", "Registration office"),
    "members": ("戶內成員", "Household members"),
    "name": ("姓名", "Name"),
    "relationship": ("稱謂", "Relationship"),
    "sex": ("性別", "Sex"),
    "date_of_birth": ("出生日期", "Date of birth"),
    "national_id": ("身分證字號", "National ID"),
    "tax_year": ("所得年度", "Tax year"),
    "tax_year_value": ("民國 {roc} 年（{year}）", "{year} (ROC year {roc})"),
    "payer": ("扣繳單位", "Payer"),
    "category": ("所得類別", "Category"),
    "gross_amount": ("給付總額", "Gross"),
    "tax_withheld": ("扣繳稅額", "Tax withheld"),
    "net_payment": ("給付淨額", "Net"),
    "total": ("合計", "Total"),
    "unit": ("投保單位", "Insured unit"),
    "period": ("投保期間", "Period"),
    "until_now": ("迄今", "to date"),
    "insured_salary": ("投保薪資", "Insured salary"),
    "current_insured_salary": ("目前投保薪資", "Current insured salary"),
    "total_insured_period": ("投保年資", "Insured period"),
    "period_value": ("{years} 年 {months} 個月 {days} 日", "{years} years {months} months {days} days"),
    "not_insured": ("目前未投保", "not insured now"),
    "lands": ("土地", "Land"),
    "buildings": ("房屋", "Buildings"),
    "vehicles": ("車輛", "Vehicles"),
    "investments": ("投資", "Investments"),
    "location": ("坐落", "Location"),
    "share": ("持分", "Share"),
    "value_of_share": ("持分價值", "Value of share"),
    "plate_number": ("車牌", "Plate"),
    "vehicle": ("車種／廠牌", "Type / make"),
    "company": ("公司", "Company"),
    "capital_amount": ("出資額", "Capital"),
    "total_value": ("財產總額", "Total value"),
    "amount": ("NT$ {value}", "NT$ {value}"),
}


def translate(texts: Texts, key: str, lang: str, **params: object) -> str:
    """Return the text *key* in *lang* (``zh`` or ``en``), with ``{name}`` placeholders filled."""
    zh, en = texts[key]
    text = en if lang == "en" else zh
    return text.format(**params) if params else text
