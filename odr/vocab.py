"""Names the user sees for the platform's fixed lists (categories, statuses, roles, regions)."""

from __future__ import annotations

from odr.errors import N_

CATEGORY_LABELS = {
    "family": N_("Family"),
    "labour": N_("Labour"),
    "property": N_("Property"),
    "consumer": N_("Consumer"),
    "community": N_("Neighbours and community"),
    "local_authority": N_("With a local authority"),
    "other": N_("Other"),
}

STATUS_LABELS = {
    "requested": N_("Requested"),
    "accepted": N_("Accepted by a mediator"),
    "consented": N_("All parties consented"),
    "in_session": N_("In session"),
    "agreement_drafted": N_("Agreement drafted"),
    "signed": N_("Signed"),
    "filed": N_("Filed with the court"),
    "court_accepted": N_("Accepted by the court"),
    "court_rejected": N_("Rejected by the court"),
    "declined": N_("Declined"),
    "withdrawn": N_("Withdrawn"),
    "no_agreement": N_("Ended without agreement"),
}

CASE_ROLE_LABELS = {
    "party": N_("Party"),
    "representative": N_("Representative"),
    "mediator": N_("Mediator"),
    "co_mediator": N_("Co-mediator"),
    "interpreter": N_("Interpreter"),
    "observer": N_("Observer"),
}

ACCOUNT_ROLE_LABELS = {
    "party": N_("Citizen"),
    "mediator": N_("Mediator"),
    "court_clerk": N_("Court clerk"),
    "administrator": N_("Administrator"),
}

GENDER_LABELS = {
    "unspecified": N_("Not said (подал(а))"),
    "masculine": N_("Masculine (подал)"),
    "feminine": N_("Feminine (подала)"),
}

SIDE_LABELS = {"a": N_("Side A"), "b": N_("Side B")}

MEDIATOR_KIND_LABELS = {
    "professional": N_("Professional mediator"),
    "public": N_("Public mediator"),
    "court": N_("Court mediator"),
}

# Kazakhstan's regions and cities of republican significance (since 2022).
REGION_LABELS = {
    "astana": N_("Astana"),
    "almaty_city": N_("Almaty (city)"),
    "shymkent": N_("Shymkent"),
    "abai": N_("Abai Region"),
    "akmola": N_("Akmola Region"),
    "aktobe": N_("Aktobe Region"),
    "almaty": N_("Almaty Region"),
    "atyrau": N_("Atyrau Region"),
    "east_kazakhstan": N_("East Kazakhstan Region"),
    "zhambyl": N_("Zhambyl Region"),
    "zhetysu": N_("Zhetysu Region"),
    "west_kazakhstan": N_("West Kazakhstan Region"),
    "karaganda": N_("Karaganda Region"),
    "kostanay": N_("Kostanay Region"),
    "kyzylorda": N_("Kyzylorda Region"),
    "mangystau": N_("Mangystau Region"),
    "pavlodar": N_("Pavlodar Region"),
    "north_kazakhstan": N_("North Kazakhstan Region"),
    "turkistan": N_("Turkistan Region"),
    "ulytau": N_("Ulytau Region"),
}

EVENT_LABELS = {
    "requested": N_("Mediation requested"),
    "status": N_("Status changed"),
    "invited": N_("Invitation sent"),
    "joined": N_("Joined the case"),
    "invitation_revoked": N_("Invitation revoked"),
    "participant_removed": N_("A participant was removed"),
    "consented": N_("Consented to mediation"),
    "session_scheduled": N_("Session scheduled"),
    "draft_created": N_("Agreement draft started"),
    "draft_approved": N_("A party approved the draft"),
    "draft_frozen": N_("Agreement frozen for signature"),
    "signed": N_("Signed the agreement"),
    "sealed": N_("Agreement signed by everyone and sealed"),
    "filed": N_("Agreement filed with the court"),
    "filing_accepted": N_("The court accepted the agreement"),
    "filing_rejected": N_("The court rejected the agreement"),
    "contract_prepared": N_("Mediation contract prepared for signature"),
    "contract_void": N_("The people of the case changed: the unsigned contract was replaced"),
    "contract_signed": N_("Signed the mediation contract"),
    "contract_concluded": N_("Mediation contract signed by everyone: the term of mediation "
                             "runs"),
    "term_extended": N_("Term of mediation extended with the parties' agreement"),
    "term_expired": N_("The term of mediation expired"),
    "closed": N_("The mediator closed the case"),
    "assigned": N_("The organisation chose the mediator"),
}

# The timeline's sentences when it knows who acted (odr.timeline); %(role)s is the role an
# invitation was for, and a Russian translation chooses the verb's gender in braces
# (odr.i18n.GENDER_CHOICE). Events nobody did (the term expired) keep EVENT_LABELS.
EVENT_SENTENCES = {
    "requested": N_("%(name)s requested mediation"),
    "invited": N_("%(name)s invited a person (%(role)s)"),
    "joined": N_("%(name)s joined the case (%(role)s)"),
    "invitation_revoked": N_("%(name)s revoked an invitation (%(role)s)"),
    "participant_removed": N_("%(name)s removed a participant from the case"),
    "consented": N_("%(name)s consented to mediation"),
    "session_scheduled": N_("%(name)s scheduled a session"),
    "draft_created": N_("%(name)s started an agreement draft"),
    "draft_approved": N_("%(name)s approved the draft"),
    "draft_frozen": N_("%(name)s froze the agreement for signature"),
    "signed": N_("%(name)s signed the agreement"),
    "filed": N_("%(name)s filed the agreement with the court"),
    "filing_accepted": N_("%(name)s accepted the agreement for the court"),
    "filing_rejected": N_("%(name)s rejected the agreement for the court"),
    "contract_prepared": N_("%(name)s prepared the mediation contract for signature"),
    "contract_signed": N_("%(name)s signed the mediation contract"),
    "term_extended": N_("%(name)s extended the term of mediation with the parties' agreement"),
    "closed": N_("%(name)s closed the case"),
    "assigned": N_("%(name)s assigned the case to a mediator"),
}

# A change of status someone made, by the status it led to.
STATUS_SENTENCES = {
    "accepted": N_("%(name)s took the case"),
    "in_session": N_("%(name)s started the mediation"),
    "declined": N_("%(name)s declined the mediation"),
    "withdrawn": N_("%(name)s withdrew from the mediation"),
    "no_agreement": N_("%(name)s ended the mediation without an agreement"),
}
STATUS_SENTENCE_OTHER = N_("%(name)s changed the status: %(status)s")

ORGANISATION_KIND_LABELS = {
    "centre": N_("Mediation centre"),
    "chamber": N_("Chamber of mediators"),
    "court_office": N_("Court conciliation office"),
    "public_council": N_("Council of public consent"),
    "assembly": N_("Assembly of People of Kazakhstan"),
}

OUTCOME_LABELS = {
    "full_agreement": N_("Full agreement"),
    "partial_agreement": N_("Partial agreement"),
    "no_agreement": N_("No agreement"),
    "withdrawn": N_("Withdrawn by a party"),
    "term_expired": N_("The term expired"),
}

CLOSE_REASON_LABELS = {
    "settled": N_("The dispute is settled"),
    "settled_in_part": N_("Part of the dispute is settled"),
    "positions_apart": N_("The positions stayed too far apart"),
    "party_stopped": N_("A party stopped taking part"),
    "not_suitable": N_("The dispute is not suited to mediation"),
    "referred_to_court": N_("The parties turn to the court"),
    "party_withdrew": N_("A party withdrew"),
    "term_ran_out": N_("The term ran out"),
    "other": N_("Another reason"),
}

FILING_STATUS_LABELS = {
    "received": N_("Received by the court"),
    "accepted": N_("Accepted by the court"),
    "rejected": N_("Rejected by the court"),
}

# What the statistics can be grouped by (odr.statistics.DIMENSIONS).
DIMENSION_LABELS = {
    "category": N_("Category"),
    "region": N_("Region"),
    "language": N_("Language"),
    "mediator_kind": N_("Kind of mediator"),
    "organisation": N_("Organisation"),
    "mediator": N_("Mediator"),
    "month": N_("Month of the request"),
}

# A group without a value of its dimension (no mediator yet, no organisation).
DIMENSION_NONE_LABELS = {
    "mediator_kind": N_("No mediator yet"),
    "organisation": N_("Not through an organisation"),
    "mediator": N_("No mediator yet"),
}

# The statistics' columns (odr.statistics.COLUMNS).
STATISTICS_COLUMN_LABELS = {
    "requested": N_("Requested"),
    "accepted": N_("Accepted"),
    "closed": N_("Closed"),
    "full_agreement": N_("Full agreement"),
    "partial_agreement": N_("Partial agreement"),
    "no_agreement": N_("No agreement"),
    "withdrawn": N_("Withdrawn"),
    "term_expired": N_("Term expired"),
    "court_accepted": N_("Accepted by a court"),
    "court_rejected": N_("Rejected by a court"),
    "sessions": N_("Sessions held"),
    "answers": N_("Feedback answers"),
    "agreement_rate": N_("Agreement rate (per cent of closed cases)"),
    "days_to_first_session": N_("Median days to the first session"),
    "days_to_close": N_("Median days to the close"),
    "side_a_share": N_("Side A's share of the time in separate meetings (per cent)"),
    "neutral_score": N_("Neutrality score (1-5)"),
    "clear_score": N_("Clarity score (1-5)"),
}
