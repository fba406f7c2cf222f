// The app's look and installability: the theme (the system's dark or light unless the
// user chose one: <html data-theme>, read by style.css) and the service worker.
export const THEME_KEY = 'tidings.theme'; // the last choice, applied before sign-in
export const THEMES = ['system', 'light', 'dark'];

export function applyTheme(theme, { remember = true } = {}) {
  const chosen = theme === 'light' || theme === 'dark' ? theme : 'system';
  const root = document.documentElement;
  if (chosen === 'system') delete root.dataset.theme;
  else root.dataset.theme = chosen;
  if (remember) localStorage.setItem(THEME_KEY, chosen);
  return chosen;
}

export function savedTheme() {
  const saved = localStorage.getItem(THEME_KEY);
  return THEMES.includes(saved) ? saved : 'system';
}

// The light or dark palette in use now (the system's when the choice is "system").
export function effectiveTheme() {
  const set = document.documentElement.dataset.theme;
  if (set === 'light' || set === 'dark') return set;
  return window.matchMedia && window.matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

export function registerServiceWorker() {
  if (!('serviceWorker' in navigator) || !window.isSecureContext) return;
  navigator.serviceWorker.register(new URL('./sw.js', import.meta.url), { scope: './' })
    .catch(() => { /* the app works without it */ });
}
