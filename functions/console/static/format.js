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

/** A property value for display: text as it is, anything else as JSON text. */
export function valueElement(value) {
  if (typeof value === "string") return h("span", { class: "value" }, value);
  return h("code", { class: "value" }, jsonText(value));
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
