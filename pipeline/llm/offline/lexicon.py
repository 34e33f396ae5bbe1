"""Explicit cues the offline engine looks for: situations a coach would weigh every time.

Each cue is a regex over one note sentence, the way it pushes the call, how hard, and the
advice document it belongs to. Topics these miss still reach the engine through the corpus
cue lines and the embeddings; these make the common, high-stakes ones reliable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Cue:
    key: str
    label: str
    direction: int  # +1 keep, -1 decline
    weight: float
    doc: str
    pattern: re.Pattern[str]
    red_flag: bool = False
    unless: re.Pattern[str] | None = None  # context that means the cue is about something else


def _c(key: str, label: str, direction: int, weight: float, doc: str, pattern: str,
       red_flag: bool = False, unless: str | None = None) -> Cue:
    return Cue(key, label, direction, weight, doc, re.compile(pattern, re.IGNORECASE), red_flag,
               re.compile(unless, re.IGNORECASE) if unless else None)


CUES: list[Cue] = [
    _c("pay-below", "Pay below the current job", -1, 2.5, "pay-below-current-job",
       r"pay cut|(take|taking) a (\w+ )?cut|step down in (pay|salary)|"
       r"(less|lower) than (what )?(i|i'm|i am) (make|making|earn|earning|get|paid)|"
       r"(below|under|less than|lower than) (my )?(current|what i (make|earn|get))|"
       r"\b(drop|dip|cut) (of|in) (\$|£|€)?\d|\b\d+k? (less|lower) than (now|my current|current)",
       red_flag=True),
    _c("unpaid", "Unpaid work before any offer", -1, 2.5, "red-flag-unpaid-trial-work",
       r"\b(unpaid|for free|free (\w+ )?(work|labou?r|project|sprint|trial|shift|design)|"
       r"without pay(ing)?|no pay\b|not (be )?paid|spec work|\bfor nothing\b|"
       r"(is|was|isn'?t|wasn'?t|be) (it )?(not )?paid\?? ?-? ?(no|nope)\b)",
       red_flag=True),
    _c("pressure", "Pressure to decide fast", -1, 2.0, "red-flag-pressure-and-exploding-offers",
       r"exploding offer|offer (expires|is only good|is valid only)|no extensions?|"
       r"(decide|decision|answer|sign|accept)\w*\b.{0,40}\b(by tomorrow|by tonight|today|"
       r"end of (the )?day|eod|within (24|48|twenty|forty)|by (monday|tuesday|wednesday|thursday|"
       r"friday|saturday|sunday)|on the spot)|(24|48)[- ]hours? to (decide|accept|sign|answer)|"
       r"pressur\w+|(good|valid|open|stands) (only )?(until|till)|"
       r"(until|by|before) (\S+ ){0,2}(tomorrow|tonight)|seat goes to|next candidate (in line )?gets|sign (it )?(today|now|"
       r"on the spot|at the session|before (i|you) leave)|hold (my|your) (spot|place|seat)",
       red_flag=True),
    _c("bait-switch", "The role differs from the posting", -1, 2.0, "red-flag-bait-and-switch-role",
       r"(different|not what|nothing like|doesn'?t match|didn'?t match|not the same|differs|"
       r"not mentioned|wasn'?t in|never mentioned)\b.{0,50}\b(posting|job description|listing|"
       r"advert|job ad|\bjd\b|the ad\b)|bait[- ]and[- ]switch|"
       r"(posting|job description|listing|\bjd\b)\b.{0,50}\b(but (actually|really|it'?s|they)|"
       r"turns out|in reality)", red_flag=True),
    _c("disrespect", "Disrespect in the process", -1, 1.5, "red-flag-disrespect-in-the-process",
       r"\b(late\b(?! nights?| hours| shifts?| stage| round)|no[- ]show|didn'?t (show|turn) up|kept me waiting|on (his|her|their) phone|"
       r"checking (his|her|their) phone|rude|condescending|dismissive|interrupted|yelled|"
       r"laughed at|eye[- ]?roll|tore into|shouted at|screamed at|snapped at|berat\w+|humiliat\w+|"
       r"chewed (him|her|them|me) out|talked over|cut (me|her|him|them) off|cut across|disrespect\w*|demeaning|belittl\w+|patroniz\w+|patronis\w+|"
       r"(asked|question) about (my )?(age|kids|children|pregnan|marri|religion|family plans))",
       red_flag=True),
    _c("turnover", "Turnover or evasive answers about it", -1, 1.5, "red-flag-evasive-about-turnover",
       r"turnover|churn|attrition|revolving door|(everyone|people|whole team|half the team) "
       r"(has |have |had |just |keep |keeps )?(left|leaving|quit)|"
       r"\b(third|fourth|fifth|sixth|3rd|4th|5th|6th) (\w+ ){0,2}(in|this|since|within)\b|"
       r"(last|previous) (\w+ )?(person|hire|one|junior|senior|manager|lead|engineer|designer)\b"
       r".{0,30}(didn'?t work out|left|quit|lasted|was let go|got fired)", red_flag=True),
    _c("evasive", "Evasive answers", -1, 1.5, "red-flag-evasive-about-pay",
       r"evasive|dodg\w+|no (written |signed )?contract|nothing in writing|not in writing|(got|was|went|were|stayed|very|pretty) vague|no (real )?numbers|"
       r"deflect\w*|changed the subject|(wouldn'?t|won'?t|refused to|didn'?t want "
       r"to|couldn'?t) (say|answer|tell|share|give|discuss|talk|put|confirm|commit|show)|"
       r"moved on|brushed (it |me )?off|sidestep\w*|vague (answer|about|on)|"
       r"we'?ll (talk|discuss|get to|figure out|sort out) (about )?(money|comp|pay|salary|numbers|"
       r"that|it|the (money|number|range|details))\b.{0,20}(later|after|once|down the)|"
       r"(pay|salary|range|comp|money)\b.{0,40}\b(later|after the trial|depends|tbd|flexible)",
       red_flag=True),
    _c("clawback", "Repayment or clawback terms", -1, 2.0, "red-flag-clawbacks-and-repayment",
       r"claw ?back|repay\w*|pay (it |them )?back|training (bond|agreement|cost)|"
       r"non-?compete|reimburse (the|them)|owe (it|them|the \w+) back|(i|you)'?d owe", red_flag=True),
    _c("overwork", "Overwork culture", -1, 1.5, "red-flag-overwork-culture",
       r"(we'?re|they'?re|we are|they are|it'?s|like) (like )?(a |one big )?[\"“']?family|"
       r"sleeping bags?|crunch|(no|hadn'?t taken|haven'?t taken|never takes?|never took) "
       r"(a )?(vacation|holiday|day off)|nobody (really )?(uses|takes) (it|pto|vacation|leave)|work hard,? play hard|nights and weekends|"
       r"(every|most|some) weekends?|weekend work|(60|65|70|80)\+? ?(hours|hrs|h)\b|"
       r"always[- ]on|on[- ]call 24|hustle|burn ?out|grind|no work[- ]life|"
       r"(12|13|14)[- ]hour (days|shifts)", red_flag=True),
    _c("commute", "A long commute", -1, 1.0, "commute-and-hours",
       r"(\d+(\.\d+)?|one|two|three|an) (and a half )?(hours?|hrs?) (each way|commute|drive|"
       r"on the train|one way)|long commute|commute is (brutal|long|awful|terrible)"),
    _c("office-mandate", "Less flexibility than promised", -1, 1.5, "remote-and-flexibility",
       r"(5|five) days (a week )?(in|on)[- ]?(the )?(office|site)|no remote|"
       r"(remote|hybrid)\b.{0,40}\b(not really|actually|isn'?t|wasn'?t|no longer|was a lie|"
       r"only for|not an option)", red_flag=True),
    _c("layoffs", "Stability worries", -1, 1.0, "company-stability",
       r"layoffs?|laid off|runway|restructur\w+|reorg\w*|hiring freeze|funding (is )?(tight|"
       r"running)|cash[- ]flow"),
    _c("pay-up", "Pay above the current job", +1, 2.0, "total-compensation",
       r"(above|more than|higher than|beats?) (my )?(current|what i (make|earn|get))|"
       r"\b\d+ ?% (raise|more|increase|bump)|(step|bump|jump) up (from|over|on)|"
       r"(raise|increase|bump) (over|from|on) (my|what)|up from (my|what i)|(raise|bump|increase|jump) (of|in) (pay|salary|"
       r"\$|£|€)"),
    _c("current-worse", "Your current job is worse", +1, 1.0, "find-clarity-about-what-you-want",
       r"(current|present|existing) (job|role|employer|company|place|situation|gig)\b.{0,30}\b"
       r"(worse|awful|toxic|terrible|bad|miserable|dead[- ]end|going nowhere|unstable|stuck)"),
    _c("growth", "Room to learn and grow", +1, 1.5, "growth-and-learning",
       r"mentor\w*|learning budget|training (program|programme|budget)|career (path|ladder|"
       r"growth)|growth (path|plan|opportunit)|room to grow|learn a lot|(would|could|will) learn|"
       r"promot\w+ (path|track|within)|conference budget|stretch"),
    _c("mutual", "Concrete signs of mutual interest", +1, 1.5, "signs-of-mutual-interest",
       r"(next|final|third|second) (round|interview|stage)|on-?site|meet the (team|ceo|founder|"
       r"director)|moving (me )?forward|asked for (my )?references|reference check|"
       r"(scheduled|booked|set up) (the |a |my )?(next|final|follow)|want(s|ed)? to move fast|"
       r"offer (is )?coming|verbal offer|sending (an|the) offer",
       unless=r"\b(other|another|elsewhere|different) (applications?|compan(y|ies)|process(es)?|"
              r"roles?|jobs?|offers?|interviews?)\b"),
    _c("other-offer", "A competing offer gives leverage", +1, 1.0, "leverage-from-competing-offers",
       r"(competing|another|other|second) offer|offer (from|at) [A-Z]|counter ?offer|"
       r"(already|just) (have|got) (an|one) offer|leverage"),
    _c("intent-decline", "You are leaning toward withdrawing", -1, 2.5, "withdraw-gracefully",
       r"\b(i'?m|i am|i'?ll|i will|going to|gonna|plan to|planning to|will)\b.{0,40}\b(pass(ing)?"
       r"\b|turn(ing)? (it|this|them|the offer) down|declin\w+|withdraw\w*|say no|walk away|"
       r"pull(ing)? out)|^\W*(decline|pass|no|nope)\W*$|^\W*(decline|pass|no|nope)\s*[.!:;]|\bhard pass\b|not for me\b|"
       r"\bi'?m out\b|not (going|moving) (forward|ahead) with"),
    _c("intent-keep", "You want to keep going", +1, 2.0, "always-go-for-the-offer",
       r"\b(i|i'?d|i'?m|i am|i really)\b.{0,25}\b(want this|want the (job|role)|would (accept|"
       r"take it|say yes)|hope (i|they) (get|make|hear|move)|excited (to|about)|can'?t wait|keen to|"
       r"(definitely|absolutely) (moving|going|want)|would love (to|this|the))|^\W*(yes|keep)\b\W|"
       r"\bmy (top|first) choice\b|(i'?ve|i have) (always |long )?wanted|what i'?ve (always )?wanted|"
       r"dream (job|role|company)"),
    _c("gut-no", "Your gut says no", -1, 1.5, "listening-to-your-energy",
       r"\bgut\b.{0,15}\b(no|nope|says no|not great|bad|negative|uneasy|off)\b|"
       r"(doesn'?t|does not|didn'?t|did not) sit (right|well)|something (is |was |felt )?off|"
       r"(felt|feel|feeling) (sick|off|uneasy|drained|deflated|uncomfortable|anxious|dread\w*)"),
    _c("gut-yes", "Your gut says yes", +1, 1.5, "listening-to-your-energy",
       r"\bgut\b.{0,15}\b(yes|says yes|good|great|positive|excited)\b|"
       r"(felt|feel|feeling|left) (energi[sz]ed|excited|buzzing|great)"),
    _c("mission", "The mission matters to you", +1, 1.0, "mission-and-values-fit",
       r"\bmission\b|\bpurpose\b|\bmeaningful\b|impact (on|for)|care (deeply )?about (the|their|what)"),
    _c("manager", "A manager you would want to work for", +1, 1.0, "manager-fit",
       r"(manager|boss|lead|supervisor)\b.{0,40}\b(great|supportive|thoughtful|kind|clear|"
       r"impressive|sharp|genuine|invested|listen\w*|one-on-ones|1:1s?|feedback)"),
]

NEGATION = re.compile(
    r"\b(no|not|never|without|nothing|zero|none|wasn'?t|isn'?t|weren'?t|aren'?t|didn'?t|"
    r"doesn'?t|don'?t|won'?t|hardly|nor)\b[^.;!?]{0,25}$",
    re.IGNORECASE,
)

SELF_PERFORMANCE = re.compile(
    r"\b(i|my)\b.{0,60}\b(stumbl\w+|blank\w*|rambl\w+|bomb\w*|froze|freez\w+|forgot|nervous|"
    r"struggl\w+|messed up|fumbl\w+|flubb\w+|botch\w+|tongue[- ]tied|panick\w+|could have|"
    r"should have|wish i had|went badly|didn'?t (answer|explain|know)|couldn'?t (answer|"
    r"explain|remember|think)|too long|off track|weak answer|not great|awkward|over-?ran|ran out "
    r"of time|underprepared|unprepared)",
    re.IGNORECASE,
)

LOW_INTEREST = re.compile(
    r"(not|isn'?t) (really |exactly )?(my )?(first|top) choice|backup|back-up|plan b|"
    r"for practice|as practice|good practice|(don'?t|do not|didn'?t) (really )?(want|care)|"
    r"not (that |really |very )?(interested|excited|into)|lukewarm|not sure i (want|even)",
    re.IGNORECASE,
)

CLARITY = re.compile(
    r"realiz\w+|realis\w+|now i know|made me (think|see|realise|realize)|learned that i|"
    r"figured out|clearer|clarity|i know (now )?(what|that) i (want|don'?t)|eye[- ]open\w+",
    re.IGNORECASE,
)

UNKNOWN = re.compile(
    r"\?|not sure|unsure|unclear|didn'?t ask|forgot to ask|don'?t know|no idea|tbd|"
    r"didn'?t (say|mention)|never (said|mentioned)|need to (find out|ask|check)|unknown|vague",
    re.IGNORECASE,
)

REHEARSE = [
    (re.compile(r"system design|architecture|coding|code|algorithm|sql|technical|whiteboard|"
                r"case (study|question)|excel|model(l)?ing|live (task|exercise)", re.I),
     "Work two timed practice problems of that kind aloud, narrating your reasoning and "
     "trade-offs as you go."),
    (re.compile(r"salary|pay|comp|expectation|number|rate", re.I),
     "Rehearse a one-sentence answer on pay expectations, with a range you have researched."),
    (re.compile(r"about yourself|introduc|pitch|walk (me|them) through", re.I),
     "Tighten a 60-second introduction that ends on why this role, and say it aloud three times."),
    (re.compile(r"weakness|conflict|failure|example|story|situation|behaviou?r|star\b", re.I),
     "Prepare three short stories (situation, action, result with a number) for common "
     "behavioural questions."),
    (re.compile(r"nervous|blank|froze|freez|panick|tongue", re.I),
     "Book a mock interview with a friend or mentor and practise pausing before answering."),
    (re.compile(r"rambl|too long|off track|over-?ran|ran out of time", re.I),
     "Practise answers of about two minutes with a timer, leading with the point."),
    (re.compile(r"question(s)? (for|to ask)|didn'?t ask|forgot to ask", re.I),
     "Write down three questions you want answered and bring them to the next conversation."),
]

PAY_WORDS = re.compile(r"salary|pay|offer|range|base|comp|wage|rate|package|\$|£|€|per hour|/hr",
                       re.I)
AMOUNT = re.compile(
    r"(?P<cur>[$£€])?\s?(?P<num>\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)\s?(?P<suf>k\b|K\b|000\b)?"
)


_RANGE = re.compile(r"(\d+)(\s*(?:-|–|to)\s*[$£€]?\d+)\s?([kK])\b")
_UNIT = re.compile(r"\s*(/|per |an |a |each )\s*(?P<u>hour|hr|h|week|wk|month|mo|year|yr|annum)\b",
                   re.I)
_PER_YEAR = {"hour": 2080, "hr": 2080, "h": 2080, "week": 52, "wk": 52, "month": 12, "mo": 12,
             "year": 1, "yr": 1, "annum": 1}


def amounts(text: str) -> list[float]:
    """Money amounts in a sentence as yearly figures (an hourly rate times 2080 and so on).

    An amount needs a currency sign, a k suffix, or four or more digits; a bare small number
    with a sign and no unit is read as an hourly rate.
    """
    found: list[float] = []
    # "$125-135k": the suffix of a range's upper end applies to its lower end too
    text = _RANGE.sub(lambda m: f"{m.group(1)}{m.group(3)}{m.group(2)}{m.group(3)}", text)
    for m in AMOUNT.finditer(text):
        try:
            value = float(m.group("num").replace(",", ""))
        except ValueError:
            continue
        unit = _UNIT.match(text, m.end())
        if m.group("suf"):
            value *= 1000
        elif not m.group("cur") and value < 1000 and not unit:
            continue
        if unit:
            value *= _PER_YEAR[unit.group("u").lower()]
        elif value < 300:
            value *= 2080
        if value >= 1000:
            found.append(value)
    return found


def negated(sentence: str, start: int) -> bool:
    return bool(NEGATION.search(sentence[:start]))


_QUOTED = re.compile(r"\"[^\"]{0,300}\"|“[^”]{0,300}”")


def match_cues(sentence: str) -> list[Cue]:
    hits: list[Cue] = []
    own_voice = _QUOTED.sub(" ", sentence)
    for cue in CUES:
        # what the person intends is read from their own words, not from someone they quote
        text = own_voice if cue.key.startswith(("intent", "gut")) else sentence
        m = cue.pattern.search(text)
        sentence_ = text
        if m and not negated(sentence_, m.start()) and not (
                cue.unless and cue.unless.search(sentence)):
            hits.append(cue)
    return hits


# -- what a note sentence says about a profile criterion ------------------------------------
@dataclass(frozen=True)
class CriterionWords:
    """The advice documents and note words that speak to a built-in profile criterion."""

    docs: tuple[str, ...]
    words: str  # a regex over one note sentence


CRITERION_WORDS: dict[str, CriterionWords] = {
    "pay": CriterionWords(
        ("total-compensation", "pay-below-current-job", "red-flag-evasive-about-pay", "negotiating-an-offer"),
        r"\b(pay|paid|salary|base|band|comp(ensation)?|raise|bonus|equity|rsus?|stock|"
        r"commission|wage|rate|k\b|\$|£|€)|\d+k\b"),
    "growth": CriterionWords(
        ("growth-and-learning", "role-scope-and-level"),
        r"\b(learn\w*|grow(th|ing)?|mentor\w*|promot\w*|career path|progression|development|"
        r"training|stretch|new skills?|coach\w*|ladder|leveling|conferences?)\b"),
    "manager_team": CriterionWords(
        ("manager-fit", "team-and-culture-signals", "red-flag-disrespect-in-the-process"),
        r"\b(manager|boss|team ?lead|team(mates)?|colleagues?|peers?|1:1s?|one-on-ones?|culture|"
        r"rude|kind|respect\w*|supportive|micromanag\w*|toxic|collaborat\w*)\b"),
    "stability": CriterionWords(
        ("company-stability", "red-flag-evasive-about-turnover", "when-options-are-scarce"),
        r"\b(layoffs?|laid off|runway|funding|funded|series [a-e]|profitab\w*|stable|stability|"
        r"turnover|attrition|(people|engineers|staff|nurses|folks|\w+s) (have )?(left|quit)|churn|"
        r"reorg\w*|fixed-term|permanent|job security|acquired|acquisition|bankrupt\w*)\b"),
    "hours_flexibility": CriterionWords(
        ("commute-and-hours", "red-flag-overwork-culture", "remote-and-flexibility"),
        r"\b(hours?|overtime|weekends?|evenings?|nights?|on-?call|pager|shifts?|rota|"
        r"flexib\w*|part-time|four-day|4-day|school run|childcare|pick-?ups?|"
        r"burn ?out|work-life|9-5|9 to 5)\b"),
    "commute_remote": CriterionWords(
        ("commute-and-hours", "remote-and-flexibility"),
        r"\b(commut\w*|remote|hybrid|on-?site|in-?office|office|wfh|from home|relocat\w*|"
        r"drive|driving|minutes each way|each way|days a week in|days in)\b"),
    "mission": CriterionWords(
        ("mission-and-values-fit",),
        r"\b(mission|purpose|impact|meaningful|values|ethic\w*|care about|patients|climate|"
        r"cause|social good)\b"),
    "title_level": CriterionWords(
        ("role-scope-and-level", "red-flag-bait-and-switch-role", "posting-versus-reality"),
        r"\b(title|level|leveled|senior|junior|principal|staff engineer|scope|downlevel\w*|"
        r"step down|step up|posting|job description|jd)\b"),
    "benefits": CriterionWords(
        ("total-compensation",),
        r"\b(benefits?|health (insurance|cover|plan)|dental|insurance|pension|401k|401\(k\)|"
        r"parental leave|maternity|paternity|pto|allowance|stipend|perks?)\b"),
}


# which explicit cues a deal-breaker or must-have's own wording points at
KINDS: list[tuple[re.Pattern[str], tuple[str, ...]]] = [
    (re.compile(p, re.I), keys) for p, keys in [
        (r"unpaid|free (work|labou?r)|trial|take-?home|spec work|homework", ("unpaid",)),
        (r"pay cut|less than|below|current pay|my pay|salary|lower pay|paid less", ("pay-below",)),
        (r"pressure|exploding|rush|deadline", ("pressure",)),
        (r"bait|switch|different (role|job)|not the (role|job)|posting|title", ("bait-switch",)),
        (r"rude|disrespect|contempt", ("disrespect",)),
        (r"clawback|claw back|repay|pay back|training bond", ("clawback",)),
        (r"overtime|evening|weekend|nights?\b|long hours|on-?call|crunch|\d\d.?hour", ("overwork",)),
        (r"office|on-?site|in[- ]person|relocat|fully remote|remote", ("office-mandate",)),
        (r"commute|travel", ("commute",)),
        (r"layoff|unstable|runway|stability|job security", ("layoffs",)),
    ]
]
