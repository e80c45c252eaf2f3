"""The devnet's offline reference model: a deterministic stand-in for third-party LLMs.

It is not an intelligence. It follows the *protocol* of a chat model faithfully so an agent can run
end to end without a provider: it calls offered tools when the user's words match them (with
arguments built from the tool's JSON schema and the user's text), answers in text after a tool
result unless the request forces a tool call (then it calls a tool not called yet in the turn,
with arguments from the question and the results), fills `json_object` and `json_schema` response
formats, honours `stop` and `max_tokens`, counts tokens, and streams token by token. It reads text
only: images, files and audio are named in its reply ("I received an image …"). Its text replies
are short, plain and derived from the last user message: they acknowledge it and restate its key
words and numbers.

In `json_object` mode it answers `{"answer": <reply>}`, unless the last user message names the keys
it wants (quoted, "with 'setup' and 'punchline' keys", or listed, "keys: setup, punchline"): then the
object has exactly those keys, each a short string from the message. String arguments that name
something (`name`, `customer_name`, `title`, a description that mentions a name) take quoted text
from the message first, in any script and quote style ('…', "…", ‘…’, “…”, 「…」, …).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import itertools
import json
import math
import re
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

from opengradient.devnet.services.llm import generation, media, tokens
from opengradient.devnet.services.llm.completions import (
    KNOWN_MODELS,
    Completion,
    Delta,
    UnknownModelError,
    Upstream,
    Usage,
)

__all__ = ["ReferenceModel", "SchemaFiller"]

_ids = itertools.count(1)


def new_call_id() -> str:
    """A unique tool call id: `call_` and 24 hex characters (a counter and a random part)."""
    return f"call_{next(_ids) & 0xFFFFFFFF:08x}{uuid.uuid4().hex[:16]}"


# --- words -----------------------------------------------------------------------------------------

_STOPWORDS = frozenset("""
a about above after again against all also am an and any are aren't as at be because been before being
below between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down
during each either else ever every few for from further get gets got had hadn't has hasn't have haven't
having he he'd he'll he's her here here's hers herself him himself his how how's however i i'd i'll
i'm i've if in into is isn't it it's its itself just let's like may me might mine more most much must
mustn't my myself no nor not now of off on once only or other ought our ours ourselves out over own
please per quite rather really same shall shan't she she'd she'll she's should shouldn't so some such
than that that's the their theirs them themselves then there there's these they they'd they'll
they're they've this those through thus to too under until up upon us use used using very via was
wasn't we we'd we'll we're we've were weren't what what's when when's where where's whether which
while who who's whom whose why why's will with within without won't would wouldn't yes yet you you'd
you'll you're you've your yours yourself yourselves
hi hello hey thanks thank ok okay sure tell give show let make want need know think
going way thing things something anything one two also well lot
""".split())

#: Words too generic to count as a match between a user's text and a tool.
_GENERIC_TOOL_WORDS = frozenset("""
get set fetch find make use tool tools function call run return returns retrieve given provide
provided specified specific data info information value values current name type list string number
object result results input output param params parameter parameters optional required default e g eg
""".split())

_SYNONYMS: dict[str, tuple[str, ...]] = {
    "weather": ("temperature", "temperate", "forecast", "rain", "raining", "sunny", "snow", "hot", "cold",
                "humidity", "wind", "climate", "degrees", "celsius", "fahrenheit"),
    "search": ("find", "look", "lookup", "google", "query", "web"),
    "calculate": ("compute", "sum", "add", "plus", "minus", "multiply", "times", "divide", "math"),
    "time": ("clock", "hour", "hours", "minute", "timezone"),
    "stock": ("price", "share", "shares", "ticker", "market"),
    "email": ("mail", "send", "message"),
}

_WORD_RE = re.compile(r"[^\W\d_][\w'’-]*|\d+(?:[.,/:]\d+)*")
_NUMBER_RE = re.compile(r"(?<![\w.])-?\d{1,15}(?:\.\d{1,15})?(?![\d])")
_CAP_RUN_RE = re.compile(r"\b[A-Z][a-zA-Z'’-]*(?:[ \t]+[A-Z][a-zA-Z'’-]*)*")
_PLACE_LEAD = frozenset("in at for near from to of around".split())
_DATE_RE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
_DATETIME_RE = re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2})?(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?")
_TIME_RE = re.compile(r"\b\d{2}:\d{2}(?::\d{2})?\b")
_EMAIL_RE = re.compile(r"[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}")
_URL_RE = re.compile(r"https?://[^\s\"'<>)]+")
_UUID_RE = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
_IPV4_RE = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")

US_STATES: dict[str, str] = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
    "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "FL": "Florida", "GA": "Georgia",
    "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois", "IN": "Indiana", "IA": "Iowa", "KS": "Kansas",
    "KY": "Kentucky", "LA": "Louisiana", "ME": "Maine", "MD": "Maryland", "MA": "Massachusetts",
    "MI": "Michigan", "MN": "Minnesota", "MS": "Mississippi", "MO": "Missouri", "MT": "Montana",
    "NE": "Nebraska", "NV": "Nevada", "NH": "New Hampshire", "NJ": "New Jersey", "NM": "New Mexico",
    "NY": "New York", "NC": "North Carolina", "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma",
    "OR": "Oregon", "PA": "Pennsylvania", "RI": "Rhode Island", "SC": "South Carolina",
    "SD": "South Dakota", "TN": "Tennessee", "TX": "Texas", "UT": "Utah", "VT": "Vermont",
    "VA": "Virginia", "WA": "Washington", "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming",
    "DC": "District of Columbia",
}
_STATE_BY_NAME = {name.lower(): code for code, name in US_STATES.items()}
_CITY_STATES: dict[str, str] = {
    "dallas": "TX", "houston": "TX", "austin": "TX", "san antonio": "TX", "fort worth": "TX",
    "el paso": "TX", "new york": "NY", "brooklyn": "NY", "buffalo": "NY", "los angeles": "CA",
    "san francisco": "CA", "san diego": "CA", "san jose": "CA", "sacramento": "CA", "oakland": "CA",
    "chicago": "IL", "boston": "MA", "seattle": "WA", "miami": "FL", "orlando": "FL", "tampa": "FL",
    "denver": "CO", "atlanta": "GA", "phoenix": "AZ", "tucson": "AZ", "philadelphia": "PA",
    "pittsburgh": "PA", "portland": "OR", "las vegas": "NV", "detroit": "MI", "nashville": "TN",
    "memphis": "TN", "minneapolis": "MN", "new orleans": "LA", "baltimore": "MD", "cleveland": "OH",
    "columbus": "OH", "cincinnati": "OH", "salt lake city": "UT", "honolulu": "HI", "anchorage": "AK",
    "charlotte": "NC", "raleigh": "NC", "indianapolis": "IN", "kansas city": "MO", "st. louis": "MO",
    "milwaukee": "WI", "albuquerque": "NM", "omaha": "NE", "oklahoma city": "OK", "louisville": "KY",
    "richmond": "VA", "washington": "DC",
}

_STATE_NAME_RE = re.compile(r"\b(?:" + "|".join(
    re.escape(n) for n in sorted(_STATE_BY_NAME, key=len, reverse=True) if n not in ("washington", "new york"))
    + r")\b")
_CITY_RE = re.compile(r"\b(?:" + "|".join(re.escape(c) for c in sorted(_CITY_STATES, key=len, reverse=True))
                      + r")(?!\w)")

_LOCATION_WORDS = frozenset("city location place town destination origin address region country where "
                            "area locale village municipality".split())
_PERSON_NAME_MODIFIERS = frozenset("first last full user person customer display nick given family "
                                   "my your contact author owner".split())
_QUERY_WORDS = frozenset("query q search question prompt text input message content keywords keyword "
                         "term terms instruction request sentence expression".split())
_ANSWER_WORDS = frozenset("answer response reply summary explanation reasoning result output "
                          "description comment conclusion rationale justification message content "
                          "text body".split())
_TOPIC_WORDS = frozenset("topic subject title headline theme".split())
#: Words of a string property that names something: quoted text in the prompt is its likely value.
_NAMING_WORDS = frozenset("name names title label alias nickname username handle".split())

_FORMAT_DEFAULTS: dict[str, str] = {
    "date": "2024-01-01",
    "date-time": "2024-01-01T00:00:00Z",
    "time": "00:00:00",
    "email": "user@example.com",
    "idn-email": "user@example.com",
    "uri": "https://example.com",
    "url": "https://example.com",
    "iri": "https://example.com",
    "uri-reference": "https://example.com",
    "hostname": "example.com",
    "idn-hostname": "example.com",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "duration": "P1D",
}


def split_identifier(name: str) -> list[str]:
    """`get_currentWeather` → `["get", "current", "weather"]`."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", spaced)
    return [w.lower() for w in re.split(r"[^A-Za-z0-9]+", spaced) if w]


def _words(text: str) -> list[str]:
    return _WORD_RE.findall(text)


@functools.lru_cache(maxsize=4096)
def _stem(word: str) -> str:
    word = word.lower().strip("'’-")
    for suffix in ("ing", "ies", "es", "s", "ed"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            word = word[: -len(suffix)]
            break
    return word[:6]


_SYNONYM_STEMS: dict[str, frozenset[str]] = {
    stem: frozenset(_stem(key) for key, synonyms in _SYNONYMS.items() if stem in {_stem(s) for s in synonyms})
    for stem in {_stem(s) for synonyms in _SYNONYMS.values() for s in synonyms}
}


def _starts_sentence(text: str, start: int) -> bool:
    i = start
    while i > 0 and text[i - 1] in " \t\r\"'(“":
        i -= 1
    return i == 0 or text[i - 1] in ".!?:;\n"


def keywords(text: str, limit: int = 8) -> list[str]:
    """The content words of `text` in order, without repeats; numbers and names (capitalised words
    inside a sentence, acronyms) are kept even beyond `limit`."""
    out: list[str] = []
    seen: set[str] = set()
    for match in _WORD_RE.finditer(text):
        clean = match.group(0).strip("'’-")
        low = clean.lower()
        if not clean or low in seen or low in _STOPWORDS or low in _GENERIC_LEADS:
            continue
        is_number = clean[0].isdigit()
        if len(clean) < 2 and not is_number:
            continue
        sentence_start = _starts_sentence(text, match.start())
        acronym = len(clean) > 1 and clean.isupper()
        is_name = acronym or (clean[0].isupper() and not sentence_start)
        if len(out) >= limit and not (is_number or is_name):
            continue
        seen.add(low)
        out.append(clean if is_number or is_name else low)
    return out


def _join(items: Sequence[str]) -> str:
    if not items:
        return ""
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def _capital_runs(text: str) -> list[tuple[int, str]]:
    """Capitalised words and runs of them (`San Francisco`) with their offsets, leaving out acronyms
    and leading words that are only capitalised because they start a sentence (`Can`, `What`, …)."""
    runs = []
    for match in _CAP_RUN_RE.finditer(text):
        group: list[tuple[int, str]] = []
        for word in [*re.finditer(r"\S+", match.group(0)), None]:
            if word is not None and any(c.islower() for c in word.group(0)):
                low = word.group(0).lower()
                start = match.start() + word.start()
                if group or (low not in _STOPWORDS and low not in _GENERIC_LEADS
                             and not (low in _IMPERATIVES and _starts_sentence(text, start))):
                    group.append((start, word.group(0)))
                continue
            if group:
                runs.append((group[0][0], " ".join(w for _, w in group)))
                group = []
    return runs


_GENERIC_LEADS = frozenset("can could would will what whats who how why where when which is are do does "
                           "please tell give show find get list write explain describe compare summarize "
                           "summarise i hi hello hey dear".split())
#: Verbs that, capitalised at the start of a sentence, are an instruction rather than a name
#: ("Create a customer named …").
_IMPERATIVES = frozenset("create add register make generate build return respond reply answer send book set "
                         "update delete remove open schedule convert translate look search check call run fetch "
                         "record save store new sign enroll enrol invite".split())


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _bound(schema: Mapping[str, Any], closed: str, opened: str, tighter: Any) -> tuple[float | None, bool]:
    """A numeric bound of `schema`: its value and whether it is exclusive (draft-04 and later forms)."""
    value = schema.get(closed)
    exclusive = schema.get(opened)
    candidates: list[tuple[float, bool]] = []
    if _is_number(value):
        candidates.append((float(value), exclusive is True))
    if _is_number(exclusive):
        candidates.append((float(exclusive), True))
    if not candidates:
        return None, False
    best = tighter(c[0] for c in candidates)
    return best, any(c[1] for c in candidates if c[0] == best)


def _within(value: float, lower: float | None, upper: float | None, lower_open: bool, upper_open: bool) -> bool:
    if lower is not None and (value < lower or (lower_open and value <= lower)):
        return False
    return not (upper is not None and (value > upper or (upper_open and value >= upper)))


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


# --- quotes and key lists -------------------------------------------------------------------------

#: Opening quote → its closing quote, in any script.
_QUOTE_PAIRS: dict[str, str] = {"'": "'", '"': '"', "`": "`", "‘": "’", "“": "”", "„": "“", "‚": "‘",
                                "「": "」", "『": "』", "«": "»", "‹": "›", "《": "》", "〈": "〉"}
#: Quotes that double as apostrophes or inch marks: they open only after a non-word character and
#: close only before one (`don't` and `5'10"` quote nothing).
_AMBIGUOUS_QUOTES = frozenset("'\"`’")
_MAX_QUOTE = 200


def _spaced_word_char(char: str) -> bool:
    """A letter or digit of a script that separates words with spaces (so a quote touching it is
    an apostrophe); CJK and kana text quotes without spaces."""
    return char.isalnum() and ord(char) < 0x2E80


def quoted_spans(text: str) -> list[tuple[int, int, str]]:
    """The quoted passages of `text`, in order: `(start, end, inner text)`, where `start` is the
    opening quote's offset and `end` the offset after the closing quote. Quotes of any script count
    ('…', "…", `…`, ‘…’, “…”, „…“, 「…」, 『…』, «…», 《…》); a passage stays on one line, is at most
    200 characters and does not start or end with whitespace."""
    out: list[tuple[int, int, str]] = []
    i = 0
    while i < len(text):
        opener = text[i]
        closer = _QUOTE_PAIRS.get(opener)
        if closer is None or (opener in _AMBIGUOUS_QUOTES and i > 0 and _spaced_word_char(text[i - 1])):
            i += 1
            continue
        j = i + 1
        end = -1
        while j < len(text) and j - i <= _MAX_QUOTE + 1 and text[j] != "\n":
            if text[j] == closer and j > i + 1 and not (
                    closer in _AMBIGUOUS_QUOTES and j + 1 < len(text) and _spaced_word_char(text[j + 1])):
                end = j
                break
            j += 1
        inner = text[i + 1:end] if end > 0 else ""
        if inner and inner == inner.strip():
            out.append((i, end + 1, inner))
            i = end + 1
        else:
            i += 1
    return out


_KEY_NOUN = r"(?:keys?|fields?|properties|property|attributes?)"
_KEY_SEP_RE = re.compile(r"\s*[,，、]\s*(?:(?:and|or)\s+|&\s*)?|\s+(?:and|or|&)\s+|\s*/\s*|\s*(?:と|和|及|および)\s*")
_PLACEHOLDER_RE = re.compile(r"\x00(\d+)\x00")
_BARE_KEY_RE = re.compile(r"[^\W\d][\w-]{0,39}")
_KEY_AFTER_RE = re.compile(rf"(?i)\b{_KEY_NOUN}\b(\s*(?:(?:named|called|are|being|:|=|-|—)\s*)?\(?\s*)")
_KEY_BEFORE_RE = re.compile(
    rf"(?i)\b(?:with|containing|including|having|has|have|include|includes|contain|contains|use|using)\s+"
    r"(?:(?:the|exactly|only|just|two|three|four|five|six|\d)\s+){0,3}"
    rf"((?:\x00\d+\x00|[^\W\d][\w-]*)(?:(?:{_KEY_SEP_RE.pattern})(?:\x00\d+\x00|[^\W\d][\w-]*))*)"
    rf"\s+(?:as\s+)?(?:(?:the|its|json|string)\s+)?{_KEY_NOUN}\b")
_QUOTED_LIST_RE = re.compile(rf"\x00\d+\x00(?:(?:{_KEY_SEP_RE.pattern})\x00\d+\x00)*")
_KEY_CONTEXT_RE = re.compile(r"(?i)\b(?:with|containing|including|having|include|includes|contain|contains|"
                             r"json|object|dict|dictionary|keys?|fields?|properties)\b")
#: Bare words that are never a key's name (they describe the keys instead).
_NOT_KEYS = frozenset("json object following these those both each every all its their string strings "
                      "value values key keys field fields named called".split())


def _key_name(inner: str) -> str | None:
    """A quoted passage as a key name: short, at most four words, no sentence inside."""
    if len(inner) > 40 or len(inner.split()) > 4 or re.search(r"[.!?,;:{}\[\]]\s|[{}\[\]\"]", inner):
        return None
    return inner if re.search(r"\w", inner) else None


def _parse_keys(listed: str, quotes: list[str], *, bare: bool, pos: int = 0) -> list[str] | None:
    """The keys of the list at `listed[pos:]` in placeholder form (`\x000\x00 and \x001\x00`, `a, b
    and c`); bare words count only when `bare` is set. None when an item is not a key."""
    keys: list[str] = []
    while len(keys) < 64:
        placeholder = _PLACEHOLDER_RE.match(listed, pos)
        if placeholder:
            key = _key_name(quotes[int(placeholder.group(1))])
            end = placeholder.end()
        else:
            word = _BARE_KEY_RE.match(listed, pos)
            if not word or not bare:
                break
            end = word.end()
            if end < len(listed) and (listed[end].isalnum() or listed[end] in "_-"):
                return None  # a word longer than a key
            key = word.group(0)
            if key.lower() in _STOPWORDS or key.lower() in _NOT_KEYS:
                return None
        if key is None:
            return None
        if key not in keys:
            keys.append(key)
        separator = _KEY_SEP_RE.match(listed, end)
        if not separator or not separator.group(0):
            pos = end
            break
        pos = separator.end()
    return keys or None


def requested_keys(text: str) -> list[str] | None:
    """The keys a message asks a JSON object to have, when it names them as quoted words or a clear
    list: "with 'setup' and 'punchline' keys", "keys: setup, punchline", 'JSON with "setup" and
    "punchline"'. None when it names none."""
    text = text.replace("\x00", " ")  # the placeholders' marker
    spans = quoted_spans(text)
    quotes = [inner for _, _, inner in spans]
    parts: list[str] = []
    last = 0
    for n, (start, end, _) in enumerate(spans):
        parts += [text[last:start], f"\x00{n}\x00"]
        last = end
    marked = "".join([*parts, text[last:]])
    found: list[tuple[int, list[str]]] = []
    for match in _KEY_AFTER_RE.finditer(marked):
        connector = match.group(1).strip()
        keys = _parse_keys(marked, quotes, bare=bool(connector), pos=match.end())
        if keys and (connector or marked.startswith("\x00", match.end())):
            found.append((match.start(), keys))
    for match in _KEY_BEFORE_RE.finditer(marked):
        keys = _parse_keys(match.group(1), quotes, bare=True)
        if keys:
            found.append((match.start(1), keys))
    if found:
        return min(found, key=lambda f: f[0])[1][:16]
    mentions_json = _KEY_CONTEXT_RE.search(marked) is not None
    for match in _QUOTED_LIST_RE.finditer(marked):
        sentence = re.split(r"[.!?\n]\s", marked[max(0, match.start() - 300):match.start()])[-1]
        keys = _parse_keys(match.group(0), quotes, bare=False)
        if keys and (_KEY_CONTEXT_RE.search(sentence) or (len(keys) > 1 and mentions_json)):
            return keys[:16]
    return None


# --- the conversation ------------------------------------------------------------------------------


def attachments(content: Any, seen: Mapping[str, str] | None = None) -> list[str]:
    """What a message's media parts are, in words (`an image`, `a file (report.pdf)`, `an audio clip`);
    images read from their bytes (`seen`, by URL) are described."""
    found = []
    for part in content if isinstance(content, list) else []:
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind == "image_url":
            url = media.image_urls([{"content": [part]}])
            described = (seen or {}).get(next(url, ""))
            found.append(described or "an image")
        elif kind == "input_audio":
            found.append("an audio clip")
        elif kind == "file":
            name = _mapping(part.get("file")).get("filename")
            found.append(f"a file ({name})" if isinstance(name, str) and name else "a file")
    return found


def _attachment_only(message: Mapping[str, Any]) -> bool:
    """A user message of media alone: how tool results that hold media travel (tool messages carry text)."""
    content = message.get("content")
    return (message.get("role") == "user" and bool(attachments(content))
            and not tokens.message_text(content).strip())


@dataclass
class _Conversation:
    messages: list[Mapping[str, Any]]
    model: str
    seen: Mapping[str, str] = dataclasses.field(default_factory=dict)  # image URL -> what it shows

    def _tool_media(self, index: int) -> bool:
        """Whether message `index` carries the media of the tool results just before it."""
        while index > 0 and _attachment_only(self.messages[index]):
            index -= 1
            if self.messages[index].get("role") in ("tool", "function"):
                return True
        return False

    def _last_user_message(self) -> Mapping[str, Any] | None:
        for index in range(len(self.messages) - 1, -1, -1):
            if self.messages[index].get("role") == "user" and not self._tool_media(index):
                return self.messages[index]
        return None

    @property
    def last_user(self) -> str:
        message = self._last_user_message()
        return tokens.message_text(message.get("content")).strip() if message is not None else ""

    @property
    def last_user_attachments(self) -> list[str]:
        """The media the user's last message holds."""
        message = self._last_user_message()
        return attachments(message.get("content"), self.seen) if message is not None else []

    def user_name(self) -> str | None:
        """The name the conversation gives the user (a `name` field or "my name is X")."""
        for message in reversed(self.messages):
            name = message.get("name")
            if message.get("role") == "user" and isinstance(name, str) and name.strip():
                return name.strip()
        for message in reversed(self.messages):
            if message.get("role") not in ("user", "system", "developer"):
                continue
            text = tokens.message_text(message.get("content"))
            match = re.search(r"(?i:\bmy name is|\bcall me|\bi am called|\bi'm called)\s+([^\W\d_][\w'’-]*)",
                              text)
            if match and match.group(1).lower() not in _STOPWORDS:
                return match.group(1)
        for message in self.messages:
            name = message.get("name")
            if message.get("role") in ("system", "developer") and isinstance(name, str) and name.strip():
                return name.strip()
        return None

    def trailing_tool_results(self) -> list[tuple[str, str]]:
        """`(tool name, result)` of the tool messages that end the conversation (with the media
        that follows them)."""
        results: list[tuple[str, str]] = []
        names: dict[str, str] = {}
        for message in self.messages:
            for call in _list(message.get("tool_calls")):
                if isinstance(call, Mapping) and isinstance(call.get("function"), Mapping):
                    names[str(call.get("id"))] = str(call["function"].get("name") or "the tool")
        end = len(self.messages)
        found: list[str] = []
        while end > 0 and self._tool_media(end - 1):
            end -= 1
            found = attachments(self.messages[end].get("content"), self.seen) + found
        for message in reversed(self.messages[:end]):
            if message.get("role") not in ("tool", "function"):
                break
            name = message.get("name")
            if not isinstance(name, str) or not name:
                name = names.get(str(message.get("tool_call_id")), "the tool")
            results.append((name, tokens.message_text(message.get("content")).strip()))
        results.reverse()
        if results and found:
            name, text = results[-1]
            results[-1] = (name, " ".join(filter(None, [text, f"(with {_join(found)})"])))
        return results

    def called_tools(self) -> set[str]:
        """Names of the tools called since the user's last message."""
        called: set[str] = set()
        for message in reversed(self.messages):
            if message.get("role") == "user" and not _attachment_only(message):
                break
            for call in _list(message.get("tool_calls")):
                if isinstance(call, Mapping) and isinstance(call.get("function"), Mapping):
                    called.add(str(call["function"].get("name")))
        return called


_EXPRESSION = (r"(-?\d{1,15}(?:\.\d{1,15})?)\s*(\+|-|\*|/|×|÷|x|plus|minus|times|multiplied by|divided by)"
               r"\s*(-?\d{1,15}(?:\.\d{1,15})?)(?!\d)")
_ARITHMETIC_QUESTION_RE = re.compile(
    r"\W*(?:(?:what(?:'s| is)|calculate|compute|how much is|solve|evaluate)\s+)?" + _EXPRESSION
    + r"\s*(?:=\s*)?[?.!]*\s*", re.IGNORECASE)
_ARITHMETIC_TAIL_RE = re.compile(_EXPRESSION + r"\s*=\s*$", re.IGNORECASE)


def _arithmetic(match: re.Match[str] | None) -> tuple[str, str] | None:
    """`(expression, value)` of a simple binary arithmetic expression matched by `_EXPRESSION`."""
    if match is None:
        return None
    a, op, b = float(match.group(1)), match.group(2).lower(), float(match.group(3))
    expression = f"{match.group(1)} {match.group(2)} {match.group(3)}"
    if op in ("+", "plus"):
        result = a + b
    elif op in ("-", "minus"):
        result = a - b
    elif op in ("*", "×", "x", "times", "multiplied by"):
        result = a * b
    elif b == 0:
        return expression, "undefined"
    else:
        result = a / b
    return expression, _number_text(round(result, 10))


def plain_reply(conversation: _Conversation) -> str:
    """The deterministic text answer to the conversation's last user message, saying which media it
    holds (the reference model reads text only)."""
    reply = _text_reply(conversation)
    found = conversation.last_user_attachments
    read = [item for item in found if item in conversation.seen.values() and "could not be read" not in item]
    unread = [item for item in found if item not in read]
    if read:
        reply += f" I received {_join(read)}."
    if unread:
        reply += (f" I received {_join(unread)}, which the devnet reference model cannot read: it reads "
                  "text and images only.")
    return reply.strip()


def _text_reply(conversation: _Conversation) -> str:
    text = conversation.last_user
    low = text.lower()
    model = conversation.model or "this model"
    words = [w.lower() for w in _words(text)]
    opening = ""
    if words and words[0] in ("hi", "hello", "hey", "greetings", "howdy"):
        opening = "Hello! "
    if re.search(r"\bhow are you\b|\bhow's it going\b|\bhow are things\b", low):
        opening += "I'm doing well, thanks for asking. "

    if not text:
        return "Hello! I'm the devnet reference model. How can I help you today?"
    if re.search(r"\b(?:what(?:'s| is)|repeat|say|tell me|remember|know)\b.{0,20}\bmy name\b|\bwho am i\b", low):
        name = conversation.user_name()
        if name:
            return f"{opening}Your name is {name}."
        return f"{opening}You haven't told me your name yet."
    if re.search(r"\bwho are you\b|\bwhat are you\b|\bwhat(?:'s| is) your name\b|\bwhich model\b|"
                 r"\bwhat model\b|\bintroduce yourself\b|\bare you (?:a |an )?(?:ai|bot|human|model|gpt)", low):
        return (f"{opening}I'm {model} on the OpenGradient devnet: an offline, deterministic reference model "
                "that stands in for the real model in local testing.")
    echo = re.match(r"(?is)^\s*(?:please\s+)?(?:say|repeat(?: after me)?|reply with|respond with|answer with|"
                    r"echo)(?:\s+(?:exactly|only|just|back|the word|the words|this))*\s*[:,]?\s+(.+?)\s*$", text)
    if echo:
        said = echo.group(1)
        quoted = re.fullmatch(r"""(["'“‘`])(.+)(["'”’`])[.!]?""", said, re.S)
        return quoted.group(2) if quoted else said
    arithmetic = _arithmetic(_ARITHMETIC_QUESTION_RE.fullmatch(text)) if len(text) < 200 else None
    if arithmetic:
        expression, value = arithmetic
        if value == "undefined":
            return f"{expression} is undefined: it divides by zero."
        return f"{expression} = {value}."
    if re.fullmatch(r"\W*(?:thanks|thank you|thx|ty)\b.{0,40}", low):
        return "You're welcome! Let me know if there's anything else."
    found = keywords(text)
    if opening and len(words) <= 8 and (not found or text.rstrip().endswith("?") and "how are you" in low):
        return f"{opening}How can I help you today?".replace("  ", " ")
    if not found:
        return f"{opening}I received your message. I'm the devnet reference model, so my replies are simple."
    phrase = _join(found)
    if text.rstrip().endswith("?") or re.match(r"(?i)\s*(?:what|who|why|how|when|where|which|can|could|is|are|"
                                                r"do|does|should|would|will)\b", text):
        return (f"{opening}You asked about {phrase}. As the devnet reference model I give a deterministic "
                "reply rather than a real answer.")
    return (f"{opening}Noted: {phrase}. This is a deterministic reply from the devnet reference model.")


def _concise(reply: str, budget: int = 24) -> str:
    """The leading sentences of `reply` that fit in about `budget` tokens (at least one), so a
    structured answer stays small."""
    if tokens.count_tokens(reply) <= budget:
        return reply
    sentences = re.findall(r".+?(?:[.!?](?=\s|$)|$)\s*", reply, re.S)
    out = sentences[0] if sentences else reply
    for sentence in sentences[1:]:
        if tokens.count_tokens(out + sentence) > budget:
            break
        out += sentence
    return out.strip()


def web_search_reply(query: str) -> str:
    """What a `web_search` request found, from the devnet's local corpus (labelled: never the web)."""
    found = generation.search(query)
    if not found:
        return "Web search (the devnet's local corpus, not the internet) found nothing about this."
    cited = " ".join(f"[{d.title}]({d.url}): {d.text.split('. ')[0].rstrip('.')}." for d in found)
    return f"Web search (the devnet's local corpus, not the internet) found: {cited}"


def tool_result_reply(results: list[tuple[str, str]]) -> str:
    """The text answer after tool results."""
    return " ".join(f"The result of {name} is: {result}" for name, result in results)


def completion_text(prompt: str) -> str:
    """The deterministic continuation of a text-completion prompt."""
    stripped = prompt.rstrip()
    space = "" if not prompt or prompt[-1].isspace() else " "
    arithmetic = _arithmetic(_ARITHMETIC_TAIL_RE.search(stripped[-100:]))
    if arithmetic:
        return space + arithmetic[1]
    found = keywords(prompt[-2000:])
    phrase = _join(found) if found else "the prompt"
    if not stripped:
        return "This text was written by the devnet reference model."
    if stripped.endswith("?"):
        return f"{space}The question is about {phrase}; the devnet reference model answers it deterministically."
    if stripped[-1] in ".!:;\"')]}":
        return f"{space}The text goes on about {phrase}, continued deterministically by the devnet reference model."
    return f"{space}something the devnet reference model can only restate: {phrase}."


# --- JSON schema instances -------------------------------------------------------------------------


def _property_names(schema: Any, depth: int = 0) -> frozenset[str]:
    """The property names a schema declares (lower-cased, also as split words), so quoted text that
    only names a property ("set the 'name' field") is not taken for a value."""
    if not isinstance(schema, Mapping) or depth > 6:
        return frozenset()
    names: set[str] = set()
    properties = schema.get("properties")
    if isinstance(properties, Mapping):
        for key, sub in properties.items():
            names |= {str(key).lower(), " ".join(split_identifier(str(key)))}
            names |= _property_names(sub, depth + 1)
    for key in ("items", "additionalProperties"):
        names |= _property_names(schema.get(key), depth + 1)
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for sub in _list(schema.get(key)):
            names |= _property_names(sub, depth + 1)
    for key in ("$defs", "definitions"):
        for sub in _mapping(schema.get(key)).values():
            names |= _property_names(sub, depth + 1)
    return frozenset(names)


#: Enum options matched against the user's text (the rest can still be chosen as the first).
_MAX_ENUM_SCAN = 256
#: The most work one answer may take, whatever it asks for: characters generated, plus
#: `_VALUE_COST` per value (a value costs ~30 µs to choose; 131,072 units stay under half a second).
MAX_WORK = 131_072
_VALUE_COST = 8


def work_budget(request: Mapping[str, Any]) -> int:
    """How much one answer may generate: in proportion to the token budget that was paid for
    (`max_tokens`, 100 when absent), never more than `MAX_WORK`."""
    limit = _int_option(request, "max_tokens", "max_completion_tokens")
    return min(MAX_WORK, 16 * (100 if limit is None else limit) + 4096)


class SchemaFiller:
    """Builds a valid instance of a JSON schema, taking values from a user's text where it can.

    Supported: `type` (one or a list), `enum`, `const`, `properties`/`required`, `additionalProperties`,
    `minProperties`, `items`/`prefixItems` with `minItems`/`maxItems`/`uniqueItems`, `minLength`/
    `maxLength`, `format` (date, date-time, time, email, uri, uuid, ipv4, …), `minimum`/`maximum` and the
    exclusive forms, `multipleOf`, `anyOf`/`oneOf` (first non-null choice), `allOf` (merged), `$ref`
    to `#/$defs/…` or `#/definitions/…`, and `default`. `pattern` is not honoured.
    """

    def __init__(self, text: str, *, root: Any = None, reply: str | None = None,
                 user_name: str | None = None, budget: int = MAX_WORK) -> None:
        #: What is left to generate, in characters and values: a schema that asks for more
        #: (`minItems: 1e9`, `minLength: 1e9`, …) gets a shorter instance, never unbounded work.
        self.budget = budget
        self.text = text
        self.low = text.lower()
        self.root = root
        self.reply = reply
        self.user_name = user_name
        self._numbers = [(m.start(), float(m.group(0))) for m in _NUMBER_RE.finditer(text)]
        self._used_numbers: set[int] = set()
        self._runs = _capital_runs(text)
        self._keywords = keywords(text)
        self._property_names = _property_names(root)
        self._used_quotes: set[int] = set()

    # -- helpers

    def _resolve(self, schema: Any, depth: int = 0) -> Mapping[str, Any]:
        if not isinstance(schema, Mapping):
            return {}
        ref = schema.get("$ref")
        if isinstance(ref, str) and depth < 32:
            target: Any = None
            if ref == "#":
                target = self.root
            elif ref.startswith("#/"):
                target = self.root
                for part in ref[2:].split("/"):
                    part = part.replace("~1", "/").replace("~0", "~")
                    target = target.get(part) if isinstance(target, Mapping) else None
            if isinstance(target, Mapping):
                merged = {**self._resolve(target, depth + 1), **{k: v for k, v in schema.items() if k != "$ref"}}
                return merged
        all_of = schema.get("allOf")
        if isinstance(all_of, list) and all_of:
            merged_schema: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
            for raw_part in all_of:
                for key, value in self._resolve(raw_part, depth + 1).items():
                    if key == "properties" and isinstance(value, Mapping):
                        merged_schema["properties"] = {**merged_schema.get("properties", {}), **value}
                    elif key == "required" and isinstance(value, list):
                        merged_schema["required"] = [*merged_schema.get("required", []), *value]
                    else:
                        merged_schema.setdefault(key, value)
            return merged_schema
        return schema

    def _mentioned(self, name: str) -> bool:
        parts = split_identifier(name)
        return bool(parts) and all(re.search(rf"\b{re.escape(p)}", self.low) for p in parts)

    def _value_after(self, name: str) -> str | None:
        """The word (or quoted text) that follows the property name in the text: `color is blue`."""
        phrase = r"[\s_-]*".join(re.escape(p) for p in split_identifier(name))
        if not phrase:
            return None
        pattern = re.compile(rf"\b{phrase}\b\s*(?:is|was|=|:|of|as|should be|will be)?\s*"
                             r"""(?:"([^"]+)"|'([^']+)'|“([^”]+)”|([^\s,.;:!?"'’”」』»]+))""", re.IGNORECASE)
        for match in pattern.finditer(self.text):
            if match.start() > 0 and self.text[match.start() - 1] in _QUOTE_PAIRS:
                continue  # the name is itself quoted ("with 'name' and 'age' keys")
            value = next(g for g in match.groups() if g is not None)
            if (value != value.strip() or not re.search(r"\w", value) or value.lower() in _STOPWORDS
                    or value.lower() in ("is", "was")):
                return None
            return value
        return None

    def _quoted_name(self, name: str) -> str | None:
        """Quoted text that names something: the passage after `named`/`called`/`titled`, else the
        first quoted passage that is not a property's own name; each passage is used once."""
        quotes = [(start, inner) for start, _, inner in quoted_spans(self.text) if len(inner) <= 120]
        own = {" ".join(split_identifier(name)), name.lower(), *self._property_names}
        quotes = [(start, inner) for start, inner in quotes
                  if inner.lower() not in own and " ".join(split_identifier(inner)) not in own
                  and start not in self._used_quotes]
        for start, inner in quotes:
            if re.search(r"(?i)\b(?:named|called|titled|entitled|name(?:d)?\s*(?:is|:|=|as)?)\s*$",
                         self.text[max(0, start - 24):start]):
                self._used_quotes.add(start)
                return inner
        if quotes:
            self._used_quotes.add(quotes[0][0])
            return quotes[0][1]
        return None

    def _named_run(self) -> str | None:
        """The capitalised words after `named`/`called` ("a customer named Acme Corp")."""
        match = re.search(r"\b(?:named|called|titled)\s+([A-Z][\w'’-]*(?:[ \t]+[A-Z][\w'’-]*)*)", self.text)
        return match.group(1) if match else None

    def _take_number(self, name: str) -> float | None:
        """A number for the property `name`: one next to the property's name in the text
        (`age 30`, `30 years`), else the first number no other property took."""
        parts = split_identifier(name)
        phrase = r"[\s_-]*".join(re.escape(p) for p in parts)
        if phrase and len(name) > 1:
            number = r"(?<![\w.])(-?\d{1,15}(?:\.\d{1,15})?)(?!\d)"
            match = re.search(rf"\b{phrase}s?\b[^\d\n]{{0,16}}?{number}", self.text, re.IGNORECASE)
            if not match:
                match = re.search(rf"{number}\s*(?:-\s*)?{phrase}s?\b", self.text, re.IGNORECASE)
            if match:
                for i, (pos, value) in enumerate(self._numbers):
                    if pos <= match.start(1) < pos + len(match.group(1)) + 1:
                        self._used_numbers.add(i)
                        return value
                return float(match.group(1))
        for i, (_, value) in enumerate(self._numbers):
            if i not in self._used_numbers:
                self._used_numbers.add(i)
                return value
        return None

    def _place(self) -> str | None:
        for start, run in self._runs:
            before = self.text[max(0, start - 12):start].split()
            if before and before[-1].lower().strip(",") in _PLACE_LEAD:
                return run
        match = _CITY_RE.search(self.low)
        if match:
            return match.group(0).title()
        return self._runs[0][1] if self._runs else None

    def _state_code(self) -> str | None:
        """A US state code for the text: one written in it, a state's name, a well-known city's state,
        else the first two-letter capital token."""
        for code in re.finditer(r"\b[A-Z]{2}\b", self.text):
            if code.group(0) in US_STATES and code.group(0) not in ("IN", "OR", "ME", "OK", "HI"):
                return code.group(0)
        state = _STATE_NAME_RE.search(self.low)
        if state:
            return _STATE_BY_NAME[state.group(0)]
        city = _CITY_RE.search(self.low)
        if city:
            return _CITY_STATES[city.group(0)]
        first = re.search(r"\b[A-Z]{2}\b", self.text)
        return first.group(0) if first else None

    # -- values

    @property
    def exhausted(self) -> bool:
        """True once the work budget is spent: arrays, objects and strings stop growing."""
        return self.budget <= 0

    def value(self, schema: Any, name: str = "", depth: int = 0, index: int | None = None) -> Any:
        """An instance of `schema`; `name` is the property it fills (it guides the choice)."""
        schema = self._resolve(schema)
        self.budget -= _VALUE_COST
        if depth > 12 or self.exhausted:
            return self._minimal(schema)
        if "const" in schema:
            return schema["const"]
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return self._enum(enum)
        for key in ("anyOf", "oneOf"):
            options = schema.get(key)
            if isinstance(options, list) and options:
                chosen = next((o for o in options if self._type(self._resolve(o)) != "null"), options[0])
                base = {k: v for k, v in schema.items() if k != key}
                return self.value({**base, **self._resolve(chosen)}, name, depth + 1, index)
        kind = self._type(schema)
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            return self._array(schema, name, depth)
        if kind == "integer":
            return int(self._number(schema, name, integer=True))
        if kind == "number":
            return self._number(schema, name, integer=False)
        if kind == "boolean":
            return self._boolean(schema, name)
        if kind == "null":
            return None
        return self._string(schema, name, index)

    @staticmethod
    def _type(schema: Mapping[str, Any]) -> str:
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), kind[0] if kind else None)
        if isinstance(kind, str):
            return kind
        if "properties" in schema or "additionalProperties" in schema or "required" in schema:
            return "object"
        if "items" in schema or "prefixItems" in schema:
            return "array"
        if any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                                     "multipleOf")):
            return "number"
        return "string"

    def _minimal(self, schema: Mapping[str, Any]) -> Any:
        kind = self._type(schema)
        return {"object": {}, "array": [], "integer": 0, "number": 0, "boolean": False, "null": None}.get(kind, "")

    def _enum(self, enum: list[Any]) -> Any:
        enum = enum[:_MAX_ENUM_SCAN]
        for option in enum:
            if isinstance(option, str) and option and re.search(
                    rf"(?<!\w){re.escape(option.lower())}(?!\w)", self.low):
                return option
        for option in enum:
            if isinstance(option, int | float) and not isinstance(option, bool) and any(
                    value == option for _, value in self._numbers):
                return option
        return enum[0]

    def _object(self, schema: Mapping[str, Any], depth: int) -> dict[str, Any]:
        properties = schema.get("properties")
        properties = properties if isinstance(properties, Mapping) else {}
        required = [r for r in _list(schema.get("required")) if isinstance(r, str)]
        result: dict[str, Any] = {}
        for key in required:
            result[key] = self.value(properties.get(key, {}), key, depth + 1)
        for key, sub in properties.items():
            if key not in result and depth < 4 and self._mentioned(key):
                result[key] = self.value(sub, key, depth + 1)
        minimum = schema.get("minProperties")
        if isinstance(minimum, int):
            for key, sub in properties.items():
                if len(result) >= minimum or self.exhausted:
                    break
                if key not in result:
                    result[key] = self.value(sub, key, depth + 1)
            extra = schema.get("additionalProperties", True)
            index = 0
            while len(result) < minimum and extra is not False and not self.exhausted:
                index += 1
                result[f"key{index}"] = self.value(extra if isinstance(extra, Mapping) else {}, "", depth + 1)
        return result

    def _array(self, schema: Mapping[str, Any], name: str, depth: int) -> list[Any]:
        low = schema.get("minItems")
        high = schema.get("maxItems")
        low = low if isinstance(low, int) and low > 0 else 0
        high = high if isinstance(high, int) and high >= 0 else None
        prefix = schema.get("prefixItems")
        prefix = prefix if isinstance(prefix, list) else []
        items = schema.get("items")
        if isinstance(items, list):  # draft-04 tuple form
            prefix, items = items, schema.get("additionalItems", {})
        count = max(low, len(prefix) if prefix else 1)
        if high is not None:
            count = min(count, high)
        if items is False:
            count = min(count, len(prefix))
        unique = schema.get("uniqueItems") is True
        out: list[Any] = []
        item_schema: Any = items if isinstance(items, Mapping) else {}
        singular = name[:-1] if name.endswith("s") and len(name) > 3 else name
        for index in range(count):
            if self.exhausted:
                break
            if index < len(prefix):
                out.append(self.value(prefix[index], name, depth + 1))
                continue
            sub = self._resolve(item_schema)
            enum = sub.get("enum")
            if unique and isinstance(enum, list):
                remaining = [e for e in enum if e not in out]
                if remaining:
                    chosen = self._enum(remaining)
                    out.append(chosen)
                    continue
            value = self.value(sub, singular, depth + 1, index)
            if unique and value in out:
                value = self._vary(sub, value, index)
            out.append(value)
        return out

    def _vary(self, schema: Mapping[str, Any], value: Any, index: int) -> Any:
        if isinstance(value, bool):
            return not value
        if isinstance(value, int | float):
            multiple = schema.get("multipleOf")
            step = multiple if _is_number(multiple) else 1
            maximum = schema.get("maximum")
            candidate = value + step * index
            if isinstance(maximum, int | float) and candidate > maximum:
                candidate = value - step * index
            return type(value)(candidate)
        if isinstance(value, str):
            suffix = str(index + 1)
            limit = schema.get("maxLength")
            if isinstance(limit, int) and len(value) + len(suffix) > limit:
                return (value[: max(0, limit - len(suffix))] + suffix)[-limit:] if limit else value
            return value + suffix
        return value

    def _number(self, schema: Mapping[str, Any], name: str, *, integer: bool) -> float:
        lower, lower_open = _bound(schema, "minimum", "exclusiveMinimum", max)
        upper, upper_open = _bound(schema, "maximum", "exclusiveMaximum", min)
        found = self._take_number(name)
        default = schema.get("default")
        if found is not None:
            value = found
        elif _is_number(default):
            value = float(default)
        else:
            value = lower if lower is not None else 0.0
        step_value = schema.get("multipleOf")
        step = float(step_value) if _is_number(step_value) and step_value > 0 else None
        if integer:
            if step is not None and not step.is_integer():
                step = None
            if lower is not None:
                lower = float(math.floor(lower) + 1 if lower_open and lower.is_integer() else math.ceil(lower))
                lower_open = False
            if upper is not None:
                upper = float(math.ceil(upper) - 1 if upper_open and upper.is_integer() else math.floor(upper))
                upper_open = False
            value = float(round(value))
            step = step or 1.0
        if lower is not None and upper is not None and (lower > upper or lower == upper and
                                                        (lower_open or upper_open)):
            return lower  # unsatisfiable bounds
        if lower is not None and not _within(value, lower, None, lower_open, False):
            value = lower + (min(1.0, (upper - lower) / 2) if upper is not None else 1.0) if lower_open else lower
        if upper is not None and not _within(value, None, upper, False, upper_open):
            value = upper - (min(1.0, (upper - lower) / 2) if lower is not None else 1.0) if upper_open else upper
        if step is not None:
            base = math.floor(value / step)
            candidates = [(base + k) * step for k in (0, 1, -1, 2, -2)]
            valid = [c for c in candidates if _within(c, lower, upper, lower_open, upper_open)]
            if valid:
                value = min(valid, key=lambda c: (abs(c - value), c))
        if integer:
            return float(int(value))
        return int(value) if value.is_integer() and abs(value) < 2**53 else value

    def _boolean(self, schema: Mapping[str, Any], name: str) -> bool:
        default = schema.get("default")
        if name and self._mentioned(name):
            phrase = r"[\s_-]*".join(re.escape(p) for p in split_identifier(name))
            negated = re.search(rf"\b(?:not|no|don't|do not|without|never|disable)\s+(?:\w+\s+)?{phrase}", self.low)
            return not negated
        return default if isinstance(default, bool) else False

    def _string(self, schema: Mapping[str, Any], name: str, index: int | None = None) -> str:
        value = self._string_value(schema, name, index)
        low = schema.get("minLength")
        high = schema.get("maxLength")
        if isinstance(high, int) and high >= 0 and len(value) > high:
            value = value[:high]
        if isinstance(low, int) and len(value) < low:
            value = value + "x" * max(0, min(low - len(value), self.budget))
        self.budget -= len(value)
        return value

    def _string_value(self, schema: Mapping[str, Any], name: str, index: int | None = None) -> str:
        words = set(split_identifier(name))
        description = str(schema.get("description") or "").lower()
        fmt = schema.get("format")
        if isinstance(fmt, str) or words & {"email", "url", "uri", "link", "website", "date", "uuid"}:
            fmt = fmt if isinstance(fmt, str) else next(
                {"email": "email", "url": "uri", "uri": "uri", "link": "uri", "website": "uri", "date": "date",
                 "uuid": "uuid"}[w] for w in ("email", "url", "uri", "link", "website", "date", "uuid") if w in words)
            found = self._format_value(fmt)
            if found is not None:
                return found
        default = schema.get("default")
        if isinstance(default, str):
            return default
        if "state" in words and ("abbreviation" in description or "two-letter" in description
                                 or "two letter" in description or "2-letter" in description
                                 or schema.get("maxLength") == 2):
            return self._state_code() or "CA"
        if words & _LOCATION_WORDS:
            place = self._place() or "San Francisco"
            if "state" in description and ("city" in description or "city" in words):
                code = self._state_code()
                if code and code not in place:
                    return f"{place}, {code}"
            return place
        if "state" in words and ("us" in description.split() or "u.s." in description):
            code = self._state_code()
            return US_STATES[code] if code in US_STATES else "California"
        if words & _NAMING_WORDS or re.search(r"\bnames?\b", description):
            after = self._value_after(name) if name else None
            if after:
                return after
            quoted = self._quoted_name(name)
            if quoted:
                return quoted
            named = self._named_run()
            if named:
                return named
        if "name" in words and words - {"name"} <= _PERSON_NAME_MODIFIERS or words == {"person"}:
            after = self._value_after(name)
            if after:
                return after
            if self.user_name:
                return self.user_name
            runs = [run for _, run in self._runs]
            if runs:
                return runs[0]
            return "Alex"
        after = self._value_after(name) if name else None
        if after:
            return after
        if self.reply is not None and words & _ANSWER_WORDS:
            return self.reply
        if words & _QUERY_WORDS:
            return self.text or "example"
        if words & _TOPIC_WORDS:
            return " ".join(self._keywords[:4]) or "example"
        return self._fallback_string(name, index)

    def _fallback_string(self, name: str, index: int | None) -> str:
        """A string for a property nothing in the text speaks to: the text's key words."""
        if index is not None and self._keywords:
            return self._keywords[index % len(self._keywords)]
        if not name:
            return self._keywords[0] if self._keywords else "example"
        return " ".join(self._keywords[:3]) or "example"

    def _format_value(self, fmt: str) -> str | None:
        patterns = {"date": _DATE_RE, "date-time": _DATETIME_RE, "time": _TIME_RE, "email": _EMAIL_RE,
                    "idn-email": _EMAIL_RE, "uri": _URL_RE, "url": _URL_RE, "iri": _URL_RE,
                    "uri-reference": _URL_RE, "uuid": _UUID_RE, "ipv4": _IPV4_RE}
        pattern = patterns.get(fmt)
        if pattern is not None:
            match = pattern.search(self.text)
            if match:
                return match.group(0).rstrip(".,;")
        return _FORMAT_DEFAULTS.get(fmt)


#: Words of a request's format instructions, left out of a JSON object's values.
_FORMAT_WORDS = frozenset("json object objects key keys field fields property properties attribute attributes "
                          "return returns respond reply format formatted output result results nothing other "
                          "than only string strings value values dict dictionary valid exactly named called "
                          "containing include including".split())


def _about(text: str, skip: set[str]) -> str | None:
    """What `text` is about: the words after its first `about` ("a joke about black cats" → "black
    cats"), up to four, stopping at punctuation or a word that is not part of the subject."""
    match = re.search(r"(?i)\babout\s+(?:(?:the|a|an)\s+)?", text)
    if not match:
        return None
    taken: list[str] = []
    for word in re.finditer(r"[^\W_][\w'’-]*|[^\w\s]", text[match.end():]):
        low = word.group(0).lower()
        if not word.group(0)[0].isalnum() or low in _FORMAT_WORDS or low in skip or len(taken) >= 4:
            break
        if low in _STOPWORDS:
            if low == "of" and taken:
                taken.append(word.group(0))
                continue
            break
        taken.append(word.group(0))
    while taken and taken[-1].lower() == "of":
        taken.pop()
    return " ".join(taken) or None


class _KeyedObjectFiller(SchemaFiller):
    """Fills a `json_object` answer whose keys the message names: each key gets a short string taken
    from the message (a place, a name, a date, the reply, …) or, failing that, the key's words and
    what the message is about ("Setup about cats")."""

    def __init__(self, text: str, keys: Sequence[str], *, reply: str, user_name: str | None,
                 budget: int = MAX_WORK) -> None:
        super().__init__(text, root={"type": "object", "properties": {key: {"type": "string"} for key in keys}},
                         reply=reply, user_name=user_name, budget=budget)
        self.keys = list(keys)
        key_words = {w.lower() for key in keys for w in [key, *split_identifier(key), *_words(key)]}
        sentences = [part for part in re.split(r"(?<=[.!?\n])\s+", text)
                     if part.strip() and not re.search(r"(?i)\b(?:json|keys?|fields?)\b", part)]
        topic_text = " ".join(sentences) or text
        self._topic_words = [w for w in keywords(topic_text, limit=12)
                             if w.lower() not in _FORMAT_WORDS and w.lower() not in key_words]
        self._keywords = self._topic_words  # the subject's words, not the format instructions
        about = _about(topic_text, key_words)
        runs = [run for start, run in _capital_runs(topic_text)
                if (" " in run or not _starts_sentence(topic_text, start)) and run.lower() not in key_words
                and run.lower() not in _FORMAT_WORDS]
        if about:
            self._topic = about
        elif runs:
            self._topic = runs[0]
        else:
            self._topic = _join(self._topic_words[:3])

    def _value_after(self, name: str) -> str | None:
        value = super()._value_after(name)
        if value is None or value.lower() in self._property_names or value.lower() in _FORMAT_WORDS:
            return None
        return value

    def object(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for key in self.keys:
            value = self.value({"type": "string"}, key)
            out[key] = value if isinstance(value, str) and value.strip() else self._fallback_string(key, None)
        return out

    def _fallback_string(self, name: str, index: int | None) -> str:
        label = " ".join(split_identifier(name)) or name
        label = label[:1].upper() + label[1:]
        return f"{label} about {self._topic}" if self._topic else label


# --- tools -----------------------------------------------------------------------------------------


def _tool_functions(tools: Any) -> list[Mapping[str, Any]]:
    """The function definitions of `tools` (OpenAI's nested form or the flat form)."""
    out: list[Mapping[str, Any]] = []
    if not isinstance(tools, list):
        return out
    for tool in tools:
        if not isinstance(tool, Mapping):
            continue
        function = _mapping(tool.get("function")) or tool
        if isinstance(function.get("name"), str) and function["name"]:
            out.append(function)
    return out


def _schema_words(schema: Any, depth: int = 0) -> list[str]:
    if not isinstance(schema, Mapping) or depth > 4:
        return []
    words: list[str] = []
    properties = schema.get("properties")
    if isinstance(properties, Mapping):
        for key, sub in properties.items():
            words += split_identifier(str(key))
            if isinstance(sub, Mapping):
                words += [w.lower() for w in _words(str(sub.get("description") or ""))]
                for option in _list(sub.get("enum")):
                    if isinstance(option, str):
                        words += [w.lower() for w in _words(option)]
                words += _schema_words(sub, depth + 1)
    items = schema.get("items")
    if isinstance(items, Mapping):
        words += _schema_words(items, depth + 1)
    return words


def tool_score(function: Mapping[str, Any], text: str) -> int:
    """How well the user's text matches a tool: shared content words (name words count double)."""
    user = {_stem(w) for w in _words(text) if w.lower() not in _STOPWORDS and len(w) > 1}
    for word in list(user):
        user |= _SYNONYM_STEMS.get(word, frozenset())
    name_words = {_stem(w) for w in split_identifier(str(function.get("name")))} - {
        _stem(w) for w in _GENERIC_TOOL_WORDS}
    other = [w.lower() for w in _words(str(function.get("description") or ""))]
    other += _schema_words(function.get("parameters"))
    other_words = {_stem(w) for w in other if w not in _STOPWORDS and w not in _GENERIC_TOOL_WORDS and len(w) > 1}
    return 2 * len(user & name_words) + len(user & (other_words - name_words))


# --- the model -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Answer:
    content: str | None
    tool_call: tuple[str, str] | None  # (name, arguments JSON)
    finish_reason: str
    usage: Usage
    images: list[str] | None = None


def _int_option(request: Mapping[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = request.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return max(0, value)
    return None


def _stops(request: Mapping[str, Any]) -> list[str]:
    stop = request.get("stop")
    if isinstance(stop, str):
        return [stop] if stop else []
    if isinstance(stop, list):
        return [s for s in stop if isinstance(s, str) and s]
    return []


def _limit(text: str, request: Mapping[str, Any]) -> tuple[str, str]:
    """Apply `stop` and `max_tokens` to a full output: the text returned and the finish reason."""
    cut = min((i for i in (text.find(s) for s in _stops(request)) if i >= 0), default=-1)
    if cut >= 0:
        text = text[:cut]
    limit = _int_option(request, "max_tokens", "max_completion_tokens")
    if limit is not None:
        pieces = tokens.tokenize(text)
        if len(pieces) > limit:
            return "".join(pieces[:limit]), "length"
    return text, "stop"


class ReferenceModel(Upstream):
    """The offline reference model: a deterministic stand-in for the third-party LLMs, not an AI.

    The same request always gives the same content and tool arguments; only tool call ids differ.
    `temperature` and other sampling options are accepted and ignored. Tool calls are never
    truncated by `max_tokens` (their arguments always parse).

    `models` are the bare names it serves (default: every known model).
    """

    def __init__(self, models: Iterable[str] | None = None) -> None:
        names = models if models is not None else KNOWN_MODELS
        self.models = frozenset(name for name in names)
        self._bare = frozenset(name.split("/", 1)[1] if "/" in name else name for name in self.models)

    def __repr__(self) -> str:
        return f"ReferenceModel({len(self._bare)} models)"

    def supports(self, model: str) -> bool:
        return isinstance(model, str) and (model in self._bare or model in self.models)

    def _check(self, request: Mapping[str, Any]) -> str:
        model = request.get("model")
        if not isinstance(model, str) or not self.supports(model):
            raise UnknownModelError(f"the reference model does not serve {model!r}; it serves: "
                                    + ", ".join(sorted(self._bare)))
        return model

    # -- chat

    def _answer(self, request: Mapping[str, Any], seen: Mapping[str, str] | None = None) -> _Answer:
        model = self._check(request)
        raw_messages = request.get("messages")
        messages = [m for m in raw_messages if isinstance(m, Mapping)] if isinstance(raw_messages, list) else []
        conversation = _Conversation(messages, model, dict(seen or {}))
        tools = request.get("tools")
        response_format = request.get("response_format")
        prompt_tokens = tokens.count_chat_prompt_tokens(messages, tools, response_format)

        results = conversation.trailing_tool_results()
        # After tool results it answers in text, unless the request forces a tool call.
        function = self._choose_tool(conversation, request, after_results=bool(results))
        if function is not None:
            text = "\n".join([conversation.last_user, *(result for _, result in results)])
            filler = SchemaFiller(text, root=function.get("parameters"),
                                  user_name=conversation.user_name(), budget=work_budget(request))
            parameters = function.get("parameters")
            arguments = filler.value(parameters) if isinstance(parameters, Mapping) and parameters else {}
            if not isinstance(arguments, dict):
                arguments = {}
            text = json.dumps(arguments, ensure_ascii=False)
            completion = tokens.count_tokens(text)
            return _Answer(None, (str(function["name"]), text), "tool_calls",
                           Usage(prompt_tokens, completion, prompt_tokens + completion))

        images = None
        if results:
            reply = tool_result_reply(results)
        elif generation.is_image_model(model):
            png = generation.draw_png(conversation.last_user)
            images = [generation.image_data_url(png)]
            reply = (f"Here is the image I generated for your prompt: {media.describe_image(png)}, drawn "
                     "deterministically from the prompt by the devnet reference model.")
        else:
            reply = plain_reply(conversation)
        if request.get("web_search"):
            reply = web_search_reply(conversation.last_user) + " " + reply
        full = self._formatted(reply, conversation, response_format, work_budget(request))
        content, finish = _limit(full, request)
        completion = tokens.count_tokens(content)
        return _Answer(content, None, finish, Usage(prompt_tokens, completion, prompt_tokens + completion), images)

    @staticmethod
    def _formatted(reply: str, conversation: _Conversation, response_format: Any, budget: int) -> str:
        if not isinstance(response_format, Mapping):
            return reply
        kind = response_format.get("type")
        if kind == "json_object":
            keys = requested_keys(conversation.last_user)
            if not keys:
                return json.dumps({"answer": reply}, ensure_ascii=False)
            keyed = _KeyedObjectFiller(conversation.last_user, keys[:budget], reply=_concise(reply),
                                       user_name=conversation.user_name(), budget=budget)
            return json.dumps(keyed.object(), ensure_ascii=False)
        if kind == "json_schema":
            spec = response_format.get("json_schema")
            schema = spec.get("schema") if isinstance(spec, Mapping) else None
            if schema is None and isinstance(response_format.get("schema"), Mapping):
                schema = response_format["schema"]  # the flat shape some clients send
            if not isinstance(schema, Mapping):
                return json.dumps({"answer": reply}, ensure_ascii=False)
            filler = SchemaFiller(conversation.last_user, root=schema, reply=_concise(reply),
                                  user_name=conversation.user_name(), budget=budget)
            return json.dumps(filler.value(schema), ensure_ascii=False)
        return reply

    @staticmethod
    def _choose_tool(conversation: _Conversation, request: Mapping[str, Any], *, after_results: bool = False
                     ) -> Mapping[str, Any] | None:
        """The tool to call, or None to answer in text. Right after tool results only a forced
        choice calls one: a named tool, or (for `required`) the best match among those not
        called yet in this turn (so an agent asked for a structured answer gets it)."""
        functions = _tool_functions(request.get("tools"))
        if not functions:
            return None
        choice = request.get("tool_choice", "auto")
        if choice == "none":
            return None
        text = conversation.last_user
        if after_results:
            if choice in (None, "auto"):
                return None
            if choice in ("required", "any", True):
                called = conversation.called_tools()
                functions = [f for f in functions if f["name"] not in called] or functions
                text = "\n".join([text, *(result for _, result in conversation.trailing_tool_results())])
        if isinstance(choice, Mapping):
            named = _mapping(choice.get("function")) or choice
            wanted = named.get("name")
            for function in functions:
                if function["name"] == wanted:
                    return function
            return None
        if isinstance(choice, str) and choice not in ("auto", "required", "any"):
            return next((f for f in functions if f["name"] == choice), None)  # a bare tool name
        scores = [tool_score(function, text) for function in functions]
        best = max(range(len(functions)), key=lambda i: (scores[i], -i))
        if choice in ("required", "any") or choice is True or scores[best] > 0:
            return functions[best]
        return None

    def _completion(self, answer: _Answer) -> Completion:
        tool_calls = None
        if answer.tool_call is not None:
            name, arguments = answer.tool_call
            tool_calls = [{"id": new_call_id(), "type": "function",
                           "function": {"name": name, "arguments": arguments}}]
        return Completion(answer.content, tool_calls, answer.finish_reason, answer.usage, answer.images)

    def refusal(self, request: Mapping[str, Any]) -> str | None:
        """Why the offline reference model cannot take `request` (checked before payment), or None."""
        remote = media.remote_image_urls(request.get("messages"))
        if remote:
            return (f"the devnet is offline and fetches images only from this machine, not {remote[0]!r}: "
                    "send the image as a data URL or serve it on 127.0.0.1")
        return None

    @staticmethod
    async def _look(request: Mapping[str, Any]) -> dict[str, str]:
        """What each image of the request shows, read from its bytes (by URL)."""
        seen: dict[str, str] = {}
        for url in media.image_urls(request.get("messages")):
            if url not in seen:
                try:
                    seen[url] = media.describe_image(await media.read_image(url))
                except media.ImageError as exc:
                    seen[url] = f"an image that could not be read ({exc})"
        return seen

    async def chat(self, request: dict[str, Any]) -> Completion:
        return self._completion(self._answer(request, await self._look(request)))

    async def stream_chat(self, request: dict[str, Any]) -> AsyncIterator[Delta]:
        answer = self._answer(request, await self._look(request))
        async for delta in self._stream(answer):
            yield delta

    @staticmethod
    async def _stream(answer: _Answer) -> AsyncIterator[Delta]:
        if answer.tool_call is not None:
            name, arguments = answer.tool_call
            yield Delta(tool_call={"index": 0, "id": new_call_id(), "type": "function",
                                   "function": {"name": name, "arguments": ""}})
            for piece in tokens.tokenize(arguments):
                await asyncio.sleep(0)
                yield Delta(tool_call={"index": 0, "function": {"arguments": piece}})
        else:
            for piece in tokens.tokenize(answer.content or ""):
                yield Delta(content=piece)
                await asyncio.sleep(0)
        yield Delta(finish_reason=answer.finish_reason, usage=answer.usage, images=answer.images)

    # -- text completion

    def _complete_answer(self, request: Mapping[str, Any]) -> _Answer:
        self._check(request)
        prompt = request.get("prompt")
        if isinstance(prompt, list):
            prompt = next((p for p in prompt if isinstance(p, str)), "")
        prompt = prompt if isinstance(prompt, str) else ""
        prompt_tokens = tokens.count_tokens(prompt)
        text, finish = _limit(completion_text(prompt), request)
        completion = tokens.count_tokens(text)
        return _Answer(text, None, finish, Usage(prompt_tokens, completion, prompt_tokens + completion))

    async def complete(self, request: dict[str, Any]) -> Completion:
        return self._completion(self._complete_answer(request))

    async def stream_complete(self, request: dict[str, Any]) -> AsyncIterator[Delta]:
        answer = self._complete_answer(request)
        async for delta in self._stream(answer):
            yield delta
