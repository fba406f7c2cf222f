// Modals, confirmations and toasts, built from DOM nodes (no innerHTML).
import { h } from './dom.js';
import { t } from './i18n.js';

export function toast(text, kind = 'info') {
  const root = document.getElementById('toasts');
  if (!root) return;
  const el = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
  root.append(el);
  setTimeout(() => el.remove(), 4500);
}

// Open a modal dialog. `build(close)` returns the body node. Returns close().
export function openModal(title, build, { wide = false, testid = 'modal' } = {}) {
  const root = document.getElementById('modal-root');
  const previous = document.activeElement;
  const close = () => {
    overlay.remove();
    document.removeEventListener('keydown', onKey, true);
    if (previous && previous.focus) previous.focus();
  };
  const onKey = (e) => {
    if (e.key === 'Escape') {
      e.stopPropagation();
      close();
    }
  };
  const dialog = h('div', { class: `modal${wide ? ' modal-wide' : ''}`, role: 'dialog', 'aria-modal': 'true',
    'aria-label': title, 'data-testid': testid },
  h('div', { class: 'modal-head' }, h('h2', {}, title),
    h('button', { class: 'icon-btn', type: 'button', 'aria-label': t('common.close'), title: t('common.close'),
      onclick: () => close() }, '✕')),
  build(close));
  const overlay = h('div', { class: 'modal-overlay', onmousedown: (e) => { if (e.target === overlay) close(); } },
    dialog);
  root.append(overlay);
  document.addEventListener('keydown', onKey, true);
  const first = dialog.querySelector('input, select, textarea, button.btn-primary');
  if (first) setTimeout(() => first.focus(), 0);
  return close;
}

export function confirmDialog(text, { confirmLabel = t('common.confirm'), danger = false } = {}) {
  return new Promise((resolve) => {
    let done = false;
    const finish = (value, close) => {
      if (done) return;
      done = true;
      close();
      resolve(value);
    };
    const close = openModal(t('common.confirm_title'), (closeFn) => h('div', { class: 'modal-body' },
      h('p', {}, text),
      h('div', { class: 'modal-actions' },
        h('button', { class: 'btn', type: 'button', onclick: () => finish(false, closeFn) }, t('common.cancel')),
        h('button', { class: `btn ${danger ? 'btn-danger' : 'btn-primary'}`, type: 'button', 'data-testid': 'confirm-ok',
          onclick: () => finish(true, closeFn) }, confirmLabel))), { testid: 'confirm' });
    // Closing with Escape or the overlay resolves false.
    const observer = new MutationObserver(() => {
      if (!document.body.contains(document.querySelector('[data-testid=confirm]'))) {
        observer.disconnect();
        if (!done) {
          done = true;
          resolve(false);
        }
      }
    });
    observer.observe(document.getElementById('modal-root'), { childList: true });
    void close;
  });
}

export function promptDialog(title, label, { type = 'text', value = '', minLength = 0 } = {}) {
  return new Promise((resolve) => {
    let done = false;
    openModal(title, (close) => {
      const input = h('input', { type, value, required: true, minlength: minLength || null, 'data-testid': 'prompt-input' });
      const form = h('form', { class: 'modal-body', onsubmit: (e) => {
        e.preventDefault();
        done = true;
        close();
        resolve(input.value);
      } },
      h('label', { class: 'field' }, h('span', {}, label), input),
      h('div', { class: 'modal-actions' },
        h('button', { class: 'btn', type: 'button', onclick: () => { done = true; close(); resolve(null); } },
          t('common.cancel')),
        h('button', { class: 'btn btn-primary', type: 'submit', 'data-testid': 'prompt-ok' }, t('common.save'))));
      return form;
    }, { testid: 'prompt' });
    const observer = new MutationObserver(() => {
      if (!document.querySelector('[data-testid=prompt]')) {
        observer.disconnect();
        if (!done) resolve(null);
      }
    });
    observer.observe(document.getElementById('modal-root'), { childList: true });
  });
}

export function errorText(err) {
  const refused = err && err.code === 'invalid_request' && err.details && err.details.characters;
  if (Array.isArray(refused) && refused.length) return t('error.invisible_characters', { characters: refused.join(', ') });
  // a password the policy refused says why (details.reason: services/password_policy.py)
  const reason = err && err.code === 'invalid_request' && err.details && err.details.reason;
  if (reason && t(`password.${reason}`) !== `password.${reason}`) {
    return t(`password.${reason}`, { min_length: err.details.min_length ?? '' });
  }
  const key = `error.${err && err.code}`;
  const text = t(key);
  return text === key ? t('error.generic') : text;
}

export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
