// Times and values as people read them: a date-time in the browser's time
// zone and "3 hours ago"; property values as text, other JSON as JSON.

import { RawNumber, jsonText } from "./api.js";
import { h } from "./dom.js";

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
const number = new Intl.NumberFormat(undefined);

export function browserTimeZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

/** UNIX seconds -> a date-time in the browser's time zone. */
export function localDateTime(seconds) {
  return dateTime.format(new Date(Number(seconds) * 1000));
}

const UNITS = [
  ["year", 365 * 24 * 3600],
  ["month", 30 * 24 * 3600],
  ["week", 7 * 24 * 3600],
  ["day", 24 * 3600],
  ["hour", 3600],
  ["minute", 60],
  ["second", 1],
];

/** UNIX seconds -> "3 hours ago", "in 20 minutes", "now". */
export function relativeTime(seconds, nowSeconds = Date.now() / 1000) {
  const delta = Number(seconds) - nowSeconds;
  const size = Math.abs(delta);
  if (size < 10) return relative.format(0, "second");
  for (const [unit, length] of UNITS) {
    if (size >= length) return relative.format(Math.round(delta / length), unit);
  }
  return relative.format(Math.round(delta), "second");
}

/**
 * A <time> for a last update: the local date-time and, under it, how long
 * ago; -1 (stored before synchronization existed) says "never timestamped".
 * The relative part is refreshed by refreshRelativeTimes().
 */
export function updateTime(seconds) {
  const value = Number(seconds);
  if (value === -1) return h("span", { class: "never" }, "never timestamped");
  if (!Number.isFinite(value)) return h("span", { class: "never" }, "unknown");
  const date = new Date(value * 1000);
  return h(
    "span",
    {},
    h("time", { class: "when", datetime: date.toISOString() }, localDateTime(value)),
    h("span", { class: "ago", dataset: { seconds: String(value) } }, relativeTime(value)),
  );
}

export function refreshRelativeTimes(root = document) {
  for (const element of root.querySelectorAll(".ago[data-seconds]")) {
    element.textContent = relativeTime(Number(element.dataset.seconds));
  }
}

export function formatCount(value) {
  return value === null || value === undefined ? "–" : number.format(Number(value));
}

// A measured figure (a pace, a time): whole from 10 up, one decimal below,
// where the decimal still says something ("2.5", but "1,234", not "1,234.4").
const oneDecimal = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
const whole = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });

/** A measured figure as people read it: "1,234", "12", "2.5", "0.4" ("–" when unknown). */
export function formatFigure(value) {
  if (value === null || value === undefined || !Number.isFinite(Number(value))) return "–";
  const figure = Number(value);
  return (Math.abs(figure) < 10 ? oneDecimal : whole).format(figure);
}

/** A length of time in seconds as people read it: "0.4 s", "12 s", "3 min 20 s", "2 h 5 min". */
export function durationWords(seconds) {
  const value = Math.max(0, Number(seconds) || 0);
  if (value < 10) return `${formatFigure(value)} s`;
  const total = Math.round(value);
  if (total < 60) return `${total} s`;
  if (total < 3600) {
    const rest = total % 60;
    return rest ? `${Math.floor(total / 60)} min ${rest} s` : `${Math.floor(total / 60)} min`;
  }
  const minutes = Math.floor((total % 3600) / 60);
  const hours = `${number.format(Math.floor(total / 3600))} h`;
  return minutes ? `${hours} ${minutes} min` : hours;
}

export function percent(fraction) {
  const value = Math.max(0, Math.min(1, Number(fraction) || 0));
  return `${Math.floor(value * 100)} %`;
}

/** The kind of a property value: "text", "number", "boolean" or "json". */
export function valueKind(value) {
  if (typeof value === "string") return "text";
  if (typeof value === "number" || value instanceof RawNumber) return "number";
  if (typeof value === "boolean") return "boolean";
  return "json";
}

// ------------------------------------------------------------ stored strings

// Characters that draw nothing or move what follows: control characters,
// format characters (bidi overrides and isolates such as U+202E, zero-width
// spaces, the byte order mark, soft hyphens) and the line/paragraph
// separators. A stored string shows each as ⟨U+202E⟩, so "rtl_\u202Eevil"
// reads as what it holds, not as "rtl_live".
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu;
// ...except where they belong to an emoji: a zero-width joiner after a
// pictograph (👨‍👩‍👧) and the tag characters of a subdivision flag (🏴 + tags).
const ZWJ = 0x200d;
const PICTOGRAPH = /^\p{Extended_Pictographic}$/u;
const isModifier = (code) => code === 0xfe0f || (code >= 0x1f3fb && code <= 0x1f3ff);
const isTag = (code) => code >= 0xe0020 && code <= 0xe007f;

// (compared as code points: in chromium a regular expression with an
// astral range and $ did not match the flag before its tags)
function shownAsIs(char, before, keep) {
  if (keep.includes(char)) return true;
  const code = char.codePointAt(0);
  const previous = [...before].map((c) => c.codePointAt(0));
  const last = previous[previous.length - 1];
  if (code === ZWJ) {
    const base = isModifier(last) ? previous[previous.length - 2] : last;
    return base !== undefined && PICTOGRAPH.test(String.fromCodePoint(base));
  }
  return isTag(code) && last !== undefined && (last === 0x1f3f4 || isTag(last));
}

/** ⟨U+202E⟩ for one invisible character. */
export function codePointName(char) {
  return `⟨U+${char.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}⟩`;
}

/**
 * The pieces of a stored string: [text, null] for text as it is and
 * [⟨U+XXXX⟩, char] for each invisible character. `keep` lists characters
 * shown as themselves (a value keeps its line breaks and tabs).
 */
function pieces(text, keep) {
  const parts = [];
  let last = 0;
  for (const match of text.matchAll(INVISIBLE)) {
    const char = match[0];
    if (shownAsIs(char, text.slice(Math.max(0, match.index - 4), match.index), keep)) continue;
    if (match.index > last) parts.push([text.slice(last, match.index), null]);
    parts.push([codePointName(char), char]);
    last = match.index + char.length;
  }
  if (last < text.length) parts.push([text.slice(last), null]);
  return parts;
}

/** A stored string as text with its invisible characters written out (for labels and sentences). */
export function visibleText(text, { keep = "" } = {}) {
  return pieces(String(text), keep)
    .map(([shown]) => shown)
    .join("");
}

/**
 * A stored string (a property name, an id, a value) as the page shows it,
 * everywhere: isolated from the text around it (dir=auto: it takes its own
 * direction and cannot reorder the sentence it is in), its spaces kept, and
 * its invisible characters written out as ⟨U+202E⟩, marked so that they
 * cannot be mistaken for the same letters typed.
 */
export function storedText(text, { keep = "", tag = "span", className = "" } = {}) {
  const parts = pieces(String(text), keep).map(([shown, char]) =>
    char === null ? shown : h("span", { class: "invisible-char", title: `an invisible character, ${shown.slice(1, -1)}` }, shown),
  );
  return h(tag, { class: `stored ${className}`.trim(), dir: "auto" }, parts);
}

// A value longer than this many characters is shown clipped, with a
// "Show all" that opens the rest: a 15 KB value does not fill the page.
export const CLIPPED_CHARACTERS = 300;

/**
 * A property value for display: text as it is (line breaks kept), anything
 * else as JSON text; longer than CLIPPED_CHARACTERS, its beginning and a
 * <details> with all of it.
 */
export function valueElement(value) {
  const text = typeof value === "string" ? value : jsonText(value);
  const tag = typeof value === "string" ? "span" : "code";
  const characters = [...text];
  if (characters.length <= CLIPPED_CHARACTERS) return storedText(text, { keep: "\n\t", tag, className: "value" });
  return h(
    "span",
    { class: "long-value" },
    storedText(`${characters.slice(0, CLIPPED_CHARACTERS).join("")}…`, { keep: "\n\t", tag, className: "value value-clipped" }),
    h(
      "details",
      {},
      h("summary", {}, `Show all ${number.format(characters.length)} characters`),
      storedText(text, { keep: "\n\t", tag, className: "value" }),
    ),
  );
}

/** A property value as the edit field shows it. */
export function valueAsInput(value) {
  return typeof value === "string" ? value : jsonText(value);
}

/** The project's id types, hard ones first (a person's registered id is the usual way in), then soft. */
export function idTypesOf(session) {
  return (Array.isArray(session.id_types) ? session.id_types : [])
    .slice()
    .sort((a, b) => (a.kind === b.kind ? a.name.localeCompare(b.name) : a.kind === "hard" ? -1 : 1));
}
