// Translations: every UI string comes from i18n/<lang>.json.
export const LANGUAGES = [
  { code: 'en', label: 'English', short: 'EN' },
  { code: 'zh-CN', label: '简体中文', short: '中文' },
];
export const LANGUAGE_KEY = 'tidings.lang'; // a choice of the device, kept across sign-outs
let dict = {};
let fallback = {};
let current = 'en';

export function pickLanguage() {
  const saved = localStorage.getItem(LANGUAGE_KEY);
  if (saved && LANGUAGES.some((l) => l.code === saved)) return saved;
  const prefs = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language];
  for (const pref of prefs) {
    const low = String(pref || '').toLowerCase();
    if (low.startsWith('zh')) return 'zh-CN';
    if (low.startsWith('en')) return 'en';
  }
  return 'en';
}

async function fetchDict(code) {
  const res = await fetch(new URL(`./i18n/${code}.json`, import.meta.url));
  if (!res.ok) throw new Error(`cannot load ${code}`);
  return res.json();
}

export async function setLanguage(code, { remember = false } = {}) {
  const [main, base] = await Promise.all([fetchDict(code), code === 'en' ? null : fetchDict('en')]);
  dict = main;
  fallback = base || main;
  current = code;
  document.documentElement.lang = code;
  if (remember) localStorage.setItem(LANGUAGE_KEY, code);
}

export function language() {
  return current;
}

// A value inside a string (a name in "Ann is typing…", a title "Ann, Ben"), between
// FIRST STRONG ISOLATE and POP DIRECTIONAL ISOLATE: its direction controls and
// right-to-left text cannot reorder the rest of the string (the string form of <bdi>).
export function isolate(value) {
  return `\u2068${value}\u2069`;
}

export function t(key, params) {
  let text = dict[key] ?? fallback[key] ?? key;
  if (params && typeof params.n === 'number' && (dict[`${key}.one`] || fallback[`${key}.one`]) && params.n === 1) {
    text = dict[`${key}.one`] ?? fallback[`${key}.one`];
  }
  if (params) text = text.replace(/\{(\w+)\}/g, (m, name) => (name in params ? isolate(params[name]) : m));
  return text;
}
