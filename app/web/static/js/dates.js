// Times as the user reads them: their locale and time zone (the browser's Intl), counted
// from the server's clock, which the client's may differ from.

import { state } from "./state.js";

const MINUTE = 60_000;

/** Takes the server's time from an answer (`now` of a history page). */
export function syncClock(serverNow) {
  const at = Date.parse(serverNow || "");
  if (!Number.isNaN(at)) state.clockOffsetMs = at - Date.now();
}

/** Now, by the server's clock, in ms. */
export function serverNow() {
  return Date.now() + state.clockOffsetMs;
}

const monthYear = new Intl.DateTimeFormat(undefined, { month: "long", year: "numeric" });
const timeOnly = new Intl.DateTimeFormat(undefined, { timeStyle: "short" });
const weekdayTime = new Intl.DateTimeFormat(undefined, { weekday: "short", hour: "numeric", minute: "2-digit" });
const dayMonth = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });
const fullDate = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });
const full = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "short" });

/** Local midnight `days` days before the day of `ms` (calendar days: DST-proof). */
function midnight(ms, days = 0) {
  const d = new Date(ms);
  d.setHours(0, 0, 0, 0);
  d.setDate(d.getDate() - days);
  return d.getTime();
}

/** The date group of a time: {key, label}. Today, Yesterday, Previous 7 days, then by month. */
export function dateGroup(value, now = serverNow()) {
  const at = Date.parse(value);
  if (Number.isNaN(at) || at >= midnight(now)) return { key: "today", label: "Today" };
  if (at >= midnight(now, 1)) return { key: "yesterday", label: "Yesterday" };
  if (at >= midnight(now, 7)) return { key: "week", label: "Previous 7 days" };
  const d = new Date(at);
  return { key: `month-${d.getFullYear()}-${d.getMonth() + 1}`, label: monthYear.format(d) };
}

/** A short time for a row: the time today and yesterday, the weekday this week, else the date. */
export function shortTime(value, now = serverNow()) {
  const at = Date.parse(value);
  if (Number.isNaN(at)) return "";
  const d = new Date(at);
  if (at >= midnight(now, 1)) return timeOnly.format(d);
  if (at >= midnight(now, 7)) return weekdayTime.format(d);
  if (d.getFullYear() === new Date(now).getFullYear()) return dayMonth.format(d);
  return fullDate.format(d);
}

export function longTime(value) {
  const at = Date.parse(value || "");
  return Number.isNaN(at) ? "" : full.format(new Date(at));
}

/** A day: "Dec 31" this year, "Jan 2, 2027" another. */
export function shortDay(value, now = serverNow()) {
  const at = Date.parse(value || "");
  if (Number.isNaN(at)) return "";
  const d = new Date(at);
  return d.getFullYear() === new Date(now).getFullYear() ? dayMonth.format(d) : fullDate.format(d);
}

/** "archives in 12 min" for an active conversation that expires at `value`. */
export function expiryText(value, now = serverNow()) {
  const at = Date.parse(value || "");
  if (Number.isNaN(at)) return "";
  const left = at - now;
  if (left <= 0) return "archiving now";
  const minutes = Math.ceil(left / MINUTE);
  if (minutes < 60) return `archives in ${minutes} min`;
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  return rest ? `archives in ${hours} h ${rest} min` : `archives in ${hours} h`;
}

const UNITS = [
  [86_400, "day", "days"],
  [3_600, "hour", "hours"],
  [60, "minute", "minutes"],
  [1, "second", "seconds"],
];

/** A length of time in words: 600 → "10 minutes", 7200 → "2 hours", 5400 → "1 hour 30
 *  minutes": its largest unit and the next one, rounded up to that one. */
export function durationWords(seconds) {
  const left = Math.max(1, Math.round(Number(seconds) || 0));
  const word = (n, [, one, many]) => `${n} ${n === 1 ? one : many}`;
  const i = UNITS.findIndex(([size]) => left >= size);
  if (i === UNITS.length - 1) return word(left, UNITS[i]);
  const per = UNITS[i][0] / UNITS[i + 1][0];
  const total = Math.ceil(left / UNITS[i + 1][0]);
  const whole = Math.floor(total / per);
  const rest = total % per;
  return rest ? `${word(whole, UNITS[i])} ${word(rest, UNITS[i + 1])}` : word(whole, UNITS[i]);
}
