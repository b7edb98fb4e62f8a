"""Starting texts of a mediation agreement, per category, in Kazakh, Russian and English.

Each template holds what a mediation agreement needs (the parties, the mediator, the subject,
numbered terms, deadlines and how terms are carried out, consequences of non-performance, date
and place, the prevailing language version, signature lines). The text is built into the Yjs
document as Tiptap nodes, so the editor opens it ready to fill in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from pycrdt import Doc, XmlElement, XmlText

from documents.prosemirror import fragment

TEMPLATES = ("default",)

Block = tuple[str, object]  # ("h1" | "h2" | "p" | "ol" | "ul", text or list of texts)


@dataclass(frozen=True)
class AgreementFacts:
    case_number: str
    category: str
    summary: str
    region_name: str
    parties: list[tuple[str, str]]  # (name, side label)
    mediators: list[str]
    today: date


TERMS: dict[str, dict[str, list[str]]] = {
    "ru": {
        "family": ["Место проживания ребёнка (детей): …",
                   "Порядок общения с ребёнком (детьми): дни, время, каникулы …",
                   "Содержание ребёнка (алименты): сумма … тенге ежемесячно до … числа …"],
        "labour": ["Работодатель выплачивает задолженность по заработной плате в сумме … тенге.",
                   "Порядок и сроки выплаты: …",
                   "Стороны не имеют друг к другу иных претензий по данному спору."],
        "property": ["Сторона … возвращает стороне … сумму … тенге.",
                     "График платежей: … тенге до … числа каждого месяца, начиная с …",
                     "Способ платежа: банковский перевод на счёт …"],
        "consumer": ["Продавец (исполнитель) заменяет товар / возвращает … тенге.",
                     "Срок исполнения: в течение … дней с даты подписания.",
                     "Покупатель возвращает товар …"],
        "community": ["Стороны договорились о порядке пользования …",
                      "Стороны обязуются …",
                      "Стороны информируют друг друга о …"],
        "local_authority": ["Местный исполнительный орган обязуется …",
                            "Заявитель обязуется …",
                            "Срок и порядок исполнения: …"],
        "other": ["Сторона … обязуется …", "Сторона … обязуется …", "Срок исполнения: …"],
    },
    "kk": {
        "family": ["Баланың (балалардың) тұратын жері: …",
                   "Баламен (балалармен) араласу тәртібі: күндері, уақыты, демалыс …",
                   "Баланы асырау (алимент): ай сайын … күнге дейін … теңге …"],
        "labour": ["Жұмыс беруші … теңге сомасындағы жалақы берешегін төлейді.",
                   "Төлеу тәртібі мен мерзімі: …",
                   "Тараптардың осы дау бойынша бір-біріне өзге талаптары жоқ."],
        "property": ["… тарап … тарапқа … теңге сомасын қайтарады.",
                     "Төлем кестесі: … бастап әр айдың … күніне дейін … теңге.",
                     "Төлем тәсілі: … шотына банктік аударым."],
        "consumer": ["Сатушы (орындаушы) тауарды ауыстырады / … теңге қайтарады.",
                     "Орындау мерзімі: қол қойылған күннен бастап … күн ішінде.",
                     "Сатып алушы тауарды қайтарады …"],
        "community": ["Тараптар … пайдалану тәртібі туралы келісті.",
                      "Тараптар … міндеттенеді.",
                      "Тараптар бір-біріне … туралы хабарлайды."],
        "local_authority": ["Жергілікті атқарушы орган … міндеттенеді.",
                            "Өтініш беруші … міндеттенеді.",
                            "Орындау мерзімі мен тәртібі: …"],
        "other": ["… тарап … міндеттенеді.", "… тарап … міндеттенеді.", "Орындау мерзімі: …"],
    },
    "en": {
        "family": ["The child (children) will live with: …",
                   "Contact with the child (children): days, times, holidays …",
                   "Child maintenance: … tenge each month, paid by the … day of the month …"],
        "labour": ["The employer pays the unpaid wages of … tenge.",
                   "How and when the payment is made: …",
                   "The parties have no other claims against each other in this dispute."],
        "property": ["Party … repays … tenge to party ….",
                     "Payment schedule: … tenge by the … day of each month, starting ….",
                     "Payment method: bank transfer to account …"],
        "consumer": ["The seller (provider) replaces the goods / refunds … tenge.",
                     "Deadline: within … days of signing.",
                     "The buyer returns the goods …"],
        "community": ["The parties agree on the use of …",
                      "The parties undertake to …",
                      "The parties will inform each other of …"],
        "local_authority": ["The local authority undertakes to …",
                            "The applicant undertakes to …",
                            "Deadline and manner of performance: …"],
        "other": ["Party … undertakes to …", "Party … undertakes to …", "Deadline: …"],
    },
}

WORDS = {
    "ru": {
        "title": "Медиативное соглашение",
        "case": "по делу № {number}",
        "parties": "Стороны",
        "mediator": "Медиатор",
        "subject": "Предмет спора",
        "terms": "Условия, о которых договорились стороны",
        "performance": "Сроки и порядок исполнения",
        "performance_text": "Стороны исполняют условия добровольно, в сроки, указанные выше. "
                            "О ходе исполнения стороны сообщают друг другу …",
        "breach": "Последствия неисполнения",
        "breach_text": "Если сторона не исполняет соглашение, другая сторона вправе обратиться "
                       "в суд в порядке, установленном законом. Соглашение, утверждённое судом, "
                       "подлежит принудительному исполнению.",
        "final": "Заключительные положения",
        "final_text": "Соглашение заключено на основании Закона Республики Казахстан "
                      "«О медиации». Дата: {date}. Место: {place}. Соглашение составлено на "
                      "казахском и "
                      "русском языках; при расхождении текстов преимущество имеет текст на "
                      "русском языке.",
        "signatures": "Подписи",
        "signature_line": "{name} — ____________________",
    },
    "kk": {
        "title": "Медиация туралы келісім",
        "case": "№ {number} іс бойынша",
        "parties": "Тараптар",
        "mediator": "Медиатор",
        "subject": "Даудың мәні",
        "terms": "Тараптар келіскен шарттар",
        "performance": "Орындау мерзімдері мен тәртібі",
        "performance_text": "Тараптар шарттарды жоғарыда көрсетілген мерзімде өз еркімен "
                            "орындайды. Орындау барысы туралы тараптар бір-біріне хабарлайды …",
        "breach": "Орындамаудың салдары",
        "breach_text": "Егер тарап келісімді орындамаса, екінші тарап заңда белгіленген "
                       "тәртіппен сотқа жүгінуге құқылы. Сот бекіткен келісім мәжбүрлеп "
                       "орындалуға жатады.",
        "final": "Қорытынды ережелер",
        "final_text": "Келісім Қазақстан Республикасының «Медиация туралы» Заңы негізінде "
                      "жасалды. Күні: {date}. Жері: {place}. Келісім қазақ және орыс "
                      "тілдерінде жасалды; "
                      "мәтіндер арасында алшақтық болған жағдайда қазақ тіліндегі мәтін "
                      "басым болады.",
        "signatures": "Қолдар",
        "signature_line": "{name} — ____________________",
    },
    "en": {
        "title": "Mediation agreement",
        "case": "in case No. {number}",
        "parties": "The parties",
        "mediator": "Mediator",
        "subject": "Subject of the dispute",
        "terms": "Terms agreed by the parties",
        "performance": "Deadlines and performance",
        "performance_text": "The parties carry out the terms voluntarily, by the deadlines set "
                            "out above, and keep each other informed of their progress …",
        "breach": "Consequences of non-performance",
        "breach_text": "If a party does not carry out this agreement, the other party may go to "
                       "court as the law provides. An agreement approved by a court can be "
                       "enforced.",
        "final": "Final provisions",
        "final_text": "This agreement is made under the Law of the Republic of Kazakhstan "
                      "\"On Mediation\". Date: {date}. Place: {place}. It is made in English; "
                      "where a translation differs, the English text prevails.",
        "signatures": "Signatures",
        "signature_line": "{name} — ____________________",
    },
}


def blocks(language: str, facts: AgreementFacts) -> list[Block]:
    w = WORDS.get(language, WORDS["ru"])
    terms = TERMS.get(language, TERMS["ru"])
    clauses = terms.get(facts.category, terms["other"])
    when = facts.today.strftime("%d.%m.%Y")
    return [
        ("h1", w["title"]),
        ("p", w["case"].format(number=facts.case_number)),
        ("h2", w["parties"]),
        ("ol", [f"{name} ({side})" for name, side in facts.parties] or ["…"]),
        ("h2", w["mediator"]),
        ("p", ", ".join(facts.mediators) or "…"),
        ("h2", w["subject"]),
        ("p", facts.summary),
        ("h2", w["terms"]),
        ("ol", clauses),
        ("h2", w["performance"]),
        ("p", w["performance_text"]),
        ("h2", w["breach"]),
        ("p", w["breach_text"]),
        ("h2", w["final"]),
        ("p", w["final_text"].format(date=when, place=facts.region_name)),
        ("h2", w["signatures"]),
        *[("p", w["signature_line"].format(name=name)) for name, _side in facts.parties],
        *[("p", w["signature_line"].format(name=name)) for name in facts.mediators],
    ]


def _paragraph(text: str, tag: str = "paragraph", attrs: dict[str, object] | None = None
               ) -> XmlElement:
    return XmlElement(tag, attrs or {}, [XmlText(text)])  # type: ignore[arg-type]


def initial_update(language: str, facts: AgreementFacts) -> bytes:
    """The template as one Yjs update, the first stored update of a new draft."""
    return update_of(blocks(language, facts))


def update_of(content_blocks: list[Block]) -> bytes:
    """Blocks of text as one Yjs update of Tiptap nodes."""
    doc: Doc[Any] = Doc()
    root = fragment(doc)
    for kind, content in content_blocks:
        if kind in ("h1", "h2"):
            root.children.append(_paragraph(str(content), "heading", {"level": int(kind[1])}))
        elif kind == "p":
            root.children.append(_paragraph(str(content)))
        elif kind in ("ol", "ul"):
            tag = "orderedList" if kind == "ol" else "bulletList"
            lst = root.children.append(
                XmlElement(tag, {"start": 1} if kind == "ol" else {})  # type: ignore[arg-type]
            )
            assert isinstance(content, list)
            for item in content:
                li = lst.children.append(XmlElement("listItem"))
                li.children.append(_paragraph(str(item)))
    return doc.get_update()
