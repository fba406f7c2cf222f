// Dates and times in the chosen language (i18n.js), for the views.
import { t, language } from './i18n.js';

export const ts = (s) => (s ? Date.parse(s) : 0) || 0;

// The user's time zone (profile preference, an IANA name); undefined: the device's.
let zone;
export function setTimeZone(name) {
  try {
    zone = name ? new Intl.DateTimeFormat('en', { timeZone: name }).resolvedOptions().timeZone : undefined;
  } catch {
    zone = undefined; // a zone this browser does not know: the device's
  }
}

export function fmtTime(iso) {
  return new Intl.DateTimeFormat(language(), { hour: '2-digit', minute: '2-digit', timeZone: zone }).format(new Date(iso));
}
export function fmtShortTime(iso) {
  return new Intl.DateTimeFormat(language(), { hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZone: zone }).format(new Date(iso));
}
export function fmtDateTime(iso) {
  return new Intl.DateTimeFormat(language(), { dateStyle: 'medium', timeStyle: 'short', timeZone: zone }).format(new Date(iso));
}
export function dayKey(iso) {
  const d = new Date(iso);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}
export function dayLabel(iso) {
  const d = new Date(iso);
  const today = new Date();
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (dayKey(d) === dayKey(today)) return t('day.today');
  if (dayKey(d) === dayKey(yesterday)) return t('day.yesterday');
  const sameYear = d.getFullYear() === today.getFullYear();
  return new Intl.DateTimeFormat(language(), sameYear
    ? { weekday: 'long', month: 'long', day: 'numeric' }
    : { year: 'numeric', month: 'long', day: 'numeric' }).format(d);
}
export function fmtListTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (dayKey(d) === dayKey(new Date())) return fmtTime(iso);
  return new Intl.DateTimeFormat(language(), { month: 'short', day: 'numeric', timeZone: zone }).format(d);
}
