"""The mediation contract's text, in Kazakh, Russian and English.

Law No. 401-IV "On Mediation" has mediation conducted under a written contract between the
parties and the mediator, concluded before the procedure, on the principles of voluntariness,
equality of the parties, the mediator's independence and impartiality, non-interference and
confidentiality, and bounded in time. The law's current text could not be read where this was
written, so the contract names the law but no article numbers, and the term is a setting
(``Settings.mediation_term_days``, ``mediation_extension_days``): check both against the law.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from documents.agreement_templates import Block

TEMPLATE = "mediation_contract"


@dataclass(frozen=True)
class ContractFacts:
    case_number: str
    category_name: str
    summary: str
    region_name: str
    procedure_language: str  # kk | ru | en
    parties: list[tuple[str, str]]  # (name, side label)
    mediator: str
    mediator_kind: str  # "professional" | "public" | "court"
    fee: str  # empty: free of charge
    term_days: int
    extension_days: int
    verify_url: str
    today: date


WORDS: dict[str, dict[str, str]] = {
    "ru": {
        "lang_kk": "казахский", "lang_ru": "русский", "lang_en": "английский",
        "title": "Договор о медиации",
        "case": "Дело № {number}. Дата: {date}. Место: {place}.",
        "parties": "Стороны",
        "mediator": "Медиатор",
        "professional": "{name}, профессиональный медиатор",
        "public": "{name}, общественный медиатор",
        "court": "{name}, медиатор при суде",
        "intro": "Стороны и медиатор заключили настоящий договор в письменной форме до начала "
                 "процедуры медиации в соответствии с Законом Республики Казахстан "
                 "«О медиации».",
        "subject": "Предмет спора",
        "category": "Категория: {category}.",
        "language": "Язык медиации",
        "language_text": "Медиация проводится на языке: {language}. Стороны вправе "
                         "пользоваться услугами переводчика.",
        "principles": "Принципы",
        "principles_text": "Медиация проводится на основе добровольности, равноправия сторон, "
                           "независимости и беспристрастности медиатора, недопустимости "
                           "вмешательства в процедуру медиации и конфиденциальности.",
        "confidentiality": "Конфиденциальность",
        "confidentiality_text": "Медиатор и стороны не разглашают сведения, ставшие им "
                                "известными в ходе медиации, без согласия друг друга. Сказанное "
                                "медиатору на отдельной встрече с одной стороной не передаётся "
                                "другой стороне без согласия сказавшего. Платформа не записывает "
                                "встречи.",
        "fee": "Оплата",
        "fee_free": "Медиация проводится бесплатно.",
        "fee_paid": "Вознаграждение медиатора: {fee}.",
        "term": "Срок медиации",
        "term_text": "Медиация должна быть завершена в течение {days} календарных дней со дня "
                     "подписания настоящего договора всеми его участниками. С согласия сторон "
                     "медиатор может продлить срок не более чем на {extension} календарных "
                     "дней.",
        "ending": "Прекращение медиации",
        "ending_text": "Медиация прекращается подписанием соглашения об урегулировании спора; "
                       "отказом любой из сторон от медиации, который сторона вправе заявить в "
                       "любое время; заявлением медиатора о нецелесообразности дальнейшей "
                       "медиации; истечением срока медиации.",
        "signing": "Подписание",
        "signing_text": "Договор подписывается электронными подписями участников на платформе. "
                        "Подлинность подписей можно проверить по адресу {url}.",
        "signatures": "Подписи",
        "signature_line": "{name} — ____________________",
    },
    "kk": {
        "lang_kk": "қазақ тілі", "lang_ru": "орыс тілі", "lang_en": "ағылшын тілі",
        "title": "Медиация туралы шарт",
        "case": "Іс № {number}. Күні: {date}. Орны: {place}.",
        "parties": "Тараптар",
        "mediator": "Медиатор",
        "professional": "{name}, кәсіби медиатор",
        "public": "{name}, қоғамдық медиатор",
        "court": "{name}, сот жанындағы медиатор",
        "intro": "Тараптар мен медиатор осы шартты медиация рәсімі басталғанға дейін "
                 "Қазақстан Республикасының «Медиация туралы» Заңына сәйкес жазбаша нысанда "
                 "жасасты.",
        "subject": "Даудың мәні",
        "category": "Санаты: {category}.",
        "language": "Медиация тілі",
        "language_text": "Медиация мына тілде жүргізіледі: {language}. Тараптар аудармашының "
                         "қызметін пайдалануға құқылы.",
        "principles": "Қағидаттар",
        "principles_text": "Медиация ерiктiлiк, тараптардың тең құқықтылығы, медиатордың "
                           "тәуелсiздiгi мен бейтараптығы, медиация рәсіміне араласуға жол "
                           "бермеу және құпиялылық қағидаттары негізінде жүргізіледі.",
        "confidentiality": "Құпиялылық",
        "confidentiality_text": "Медиатор мен тараптар медиация барысында белгілі болған "
                                "мәліметтерді бір-бірінің келісiмiнсiз жария етпейді. Бір "
                                "тараппен жеке кездесуде медиаторға айтылған сөз айтқан "
                                "адамның келісімінсіз екінші тарапқа жеткізілмейді. Платформа "
                                "кездесулерді жазып алмайды.",
        "fee": "Төлем",
        "fee_free": "Медиация тегін жүргізіледі.",
        "fee_paid": "Медиатордың сыйақысы: {fee}.",
        "term": "Медиация мерзімі",
        "term_text": "Медиация осы шартқа барлық қатысушылар қол қойған күннен бастап {days} "
                     "күнтізбелік күн ішінде аяқталуға тиіс. Тараптардың келісімімен медиатор "
                     "мерзімді {extension} күнтізбелік күннен аспайтын мерзімге ұзарта алады.",
        "ending": "Медиацияны тоқтату",
        "ending_text": "Медиация дауды реттеу туралы келісімге қол қойылуымен; тараптардың "
                       "кез келгенінің медиациядан бас тартуымен (тарап мұны кез келген уақытта "
                       "мәлімдей алады); медиатордың медиацияны әрі қарай жүргізудің "
                       "орынсыздығы туралы мәлімдемесімен; медиация мерзімінің өтуімен "
                       "тоқтатылады.",
        "signing": "Қол қою",
        "signing_text": "Шартқа қатысушылар платформада электрондық қолтаңбамен қол қояды. "
                        "Қолтаңбалардың түпнұсқалығын мына мекенжайда тексеруге болады: {url}.",
        "signatures": "Қолтаңбалар",
        "signature_line": "{name} — ____________________",
    },
    "en": {
        "lang_kk": "Kazakh", "lang_ru": "Russian", "lang_en": "English",
        "title": "Mediation contract",
        "case": "Case No. {number}. Date: {date}. Place: {place}.",
        "parties": "Parties",
        "mediator": "Mediator",
        "professional": "{name}, professional mediator",
        "public": "{name}, public mediator",
        "court": "{name}, court-annexed mediator",
        "intro": "The parties and the mediator conclude this contract in writing before the "
                 "mediation procedure begins, under the Law of the Republic of Kazakhstan "
                 "\"On Mediation\".",
        "subject": "Subject of the dispute",
        "category": "Category: {category}.",
        "language": "Language of the mediation",
        "language_text": "The mediation is conducted in {language}. The parties may use an "
                         "interpreter.",
        "principles": "Principles",
        "principles_text": "The mediation is conducted on the principles of voluntariness, "
                           "equality of the parties, the mediator's independence and "
                           "impartiality, non-interference in the procedure, and "
                           "confidentiality.",
        "confidentiality": "Confidentiality",
        "confidentiality_text": "The mediator and the parties do not disclose what they learn "
                                "in the mediation without each other's consent. What is said to "
                                "the mediator in a private meeting with one side is not passed "
                                "to the other side without the speaker's consent. The platform "
                                "does not record meetings.",
        "fee": "Fee",
        "fee_free": "The mediation is free of charge.",
        "fee_paid": "The mediator's fee: {fee}.",
        "term": "Term of the mediation",
        "term_text": "The mediation is to be completed within {days} calendar days of the day "
                     "everyone has signed this contract. With the parties' agreement the "
                     "mediator may extend the term by at most {extension} calendar days.",
        "ending": "Ending the mediation",
        "ending_text": "The mediation ends when an agreement settling the dispute is signed; "
                       "when either party withdraws from it, which a party may do at any time; "
                       "when the mediator states that further mediation is of no use; or when "
                       "its term expires.",
        "signing": "Signing",
        "signing_text": "The contract is signed with the participants' electronic signatures on "
                        "the platform. The signatures can be verified at {url}.",
        "signatures": "Signatures",
        "signature_line": "{name} — ____________________",
    },
}


def blocks(language: str, facts: ContractFacts) -> list[Block]:
    w = WORDS.get(language, WORDS["ru"])
    fee = w["fee_paid"].format(fee=facts.fee) if facts.fee else w["fee_free"]
    return [
        ("h1", w["title"]),
        ("p", w["case"].format(number=facts.case_number, date=facts.today.strftime("%d.%m.%Y"),
                               place=facts.region_name)),
        ("p", w["intro"]),
        ("h2", w["parties"]),
        ("ol", [f"{name} ({side})" for name, side in facts.parties]),
        ("h2", w["mediator"]),
        ("p", w.get(facts.mediator_kind, w["professional"]).format(name=facts.mediator)),
        ("h2", w["subject"]),
        ("p", facts.summary),
        ("p", w["category"].format(category=facts.category_name)),
        ("h2", w["language"]),
        ("p", w["language_text"].format(
            language=w.get(f"lang_{facts.procedure_language}", facts.procedure_language))),
        ("h2", w["principles"]),
        ("p", w["principles_text"]),
        ("h2", w["confidentiality"]),
        ("p", w["confidentiality_text"]),
        ("h2", w["fee"]),
        ("p", fee),
        ("h2", w["term"]),
        ("p", w["term_text"].format(days=facts.term_days, extension=facts.extension_days)),
        ("h2", w["ending"]),
        ("p", w["ending_text"]),
        ("h2", w["signing"]),
        ("p", w["signing_text"].format(url=facts.verify_url)),
        ("h2", w["signatures"]),
        *[("p", w["signature_line"].format(name=name)) for name, _side in facts.parties],
        ("p", w["signature_line"].format(name=facts.mediator)),
    ]
