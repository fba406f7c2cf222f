// Small DOM helpers. User text only ever goes into text nodes or attributes set
// through the DOM API; nothing here assigns innerHTML.

import { avatarSrc } from './avatars.js';

export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [key, value] of Object.entries(props)) {
      if (value == null || value === false) continue;
      if (key === 'class') el.className = value;
      else if (key === 'dataset') Object.assign(el.dataset, value);
      else if (key === 'style' && typeof value === 'object') Object.assign(el.style, value);
      else if (key.startsWith('on') && typeof value === 'function') {
        el.addEventListener(key.slice(2).toLowerCase(), value);
      } else if (key === 'value' || key === 'checked' || key === 'selected') el[key] = value;
      else el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

// A name (of a person, a conversation, a department) as an element of its own: <bdi>
// isolates it, so that right-to-left text or a stray direction control in it cannot
// reorder what is around it. For names inside a string, see i18n.js `isolate`.
export function bdi(name) {
  return h('bdi', {}, name);
}

export function append(el, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false || child === true) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

// Put `nodes` into `parent` in order, moving as few existing nodes as possible
// (so that a focused editor inside an unchanged node keeps its focus).
export function reconcile(parent, nodes) {
  let cursor = parent.firstChild;
  for (const node of nodes) {
    if (node === cursor) {
      cursor = cursor.nextSibling;
      continue;
    }
    parent.insertBefore(node, cursor);
  }
  while (cursor) {
    const next = cursor.nextSibling;
    parent.removeChild(cursor);
    cursor = next;
  }
}

// Make `old` look like `fresh` (the same part built anew by the same code) while keeping
// the nodes of `old`: attributes and text are updated in place and only a node of
// another tag or role (data-testid) is replaced. A re-render between a mousedown and
// its mouseup then loses no click (Chromium drops a click whose pressed node left the
// document), and a list re-rendered every frame does not churn the DOM. Listeners of
// kept nodes stay as they were, so use it where they depend only on what keys `old`
// (a conversation's row, keyed by its id). Returns the node now in the document.
export function morph(old, fresh) {
  if (old.isEqualNode(fresh)) return old;
  if (old.nodeType !== fresh.nodeType || old.nodeName !== fresh.nodeName
      || (old.nodeType === Node.ELEMENT_NODE && old.dataset.testid !== fresh.dataset.testid)) {
    old.replaceWith(fresh);
    return fresh;
  }
  if (old.nodeType !== Node.ELEMENT_NODE) {
    if (old.nodeValue !== fresh.nodeValue) old.nodeValue = fresh.nodeValue;
    return old;
  }
  for (const name of old.getAttributeNames()) if (!fresh.hasAttribute(name)) old.removeAttribute(name);
  for (const name of fresh.getAttributeNames()) {
    const value = fresh.getAttribute(name);
    if (old.getAttribute(name) !== value) old.setAttribute(name, value);
  }
  const before = [...old.childNodes];
  const after = [...fresh.childNodes];
  after.forEach((child, i) => (i < before.length ? morph(before[i], child) : old.append(child)));
  for (const extra of before.slice(after.length)) extra.remove();
  return old;
}

const PALETTE = ['#3b6fd9', '#d9534f', '#2e9d6a', '#9b59b6', '#e67e22', '#16a2b8', '#c2417e', '#5d6d7e',
  '#7a9a01', '#b8860b'];

export function colorFor(id) {
  // FNV-1a, then a final mix so that ids differing in one character spread well.
  let hash = 0x811c9dc5;
  for (const ch of String(id)) hash = Math.imul(hash ^ ch.codePointAt(0), 0x01000193) >>> 0;
  hash ^= hash >>> 15;
  hash = Math.imul(hash, 0x2c1b3c6d) >>> 0;
  hash ^= hash >>> 12;
  return PALETTE[(hash >>> 0) % PALETTE.length];
}

export function initials(name, { person = true } = {}) {
  const text = String(name || '?').trim();
  if (!text) return '?';
  const chars = [...text];
  // CJK: for a person the given name (last one or two characters) reads best; for a
  // conversation, its first two characters.
  if (/[\u3400-\u9fff]/.test(chars[0])) {
    if (chars.length <= 2) return chars.join('');
    return person ? chars.slice(-2).join('') : chars.slice(0, 2).join('');
  }
  const words = text.split(/[\s._-]+/).filter(Boolean);
  if (words.length >= 2) return ([...words[0]][0] + [...words[1]][0]).toUpperCase();
  return chars.slice(0, 2).join('').toUpperCase();
}

// Who a user id's avatar is: app.js sets it to a lookup in the state's users.
let avatarOf = () => null;
export function setAvatarSource(lookup) { avatarOf = lookup; }

// A person's (or conversation's) avatar: the image when the user has one, over the
// initials (shown until it loads, and again if it fails).
export function avatar(id, name, { size = 'md', presence = null, person = true } = {}) {
  const src = person ? avatarSrc(avatarOf(id), size) : null;
  return h('span', { class: `avatar avatar-${size}`, style: { background: colorFor(id) }, 'aria-hidden': 'true' },
    initials(name, { person }),
    src ? h('img', { class: 'avatar-img', src, alt: '', loading: 'lazy', decoding: 'async',
      onerror: (e) => e.target.remove() }) : null,
    presence ? h('span', { class: `presence-dot presence-${presence}`, dataset: { uid: id } }) : null);
}

// Line icons drawn as inline SVG (no icon font, no emoji needed).
const ICONS = {
  chat: ['M4 5h16v11H10l-5 4v-4H4z'],
  hash: ['M5 9h15', 'M4 15h15', 'M10 4 8 20', 'M16 4l-2 16'],
  users: ['M3 20c0-3.6 2.7-6 6-6s6 2.4 6 6', 'M9 11.5a3.5 3.5 0 1 0 0-7 3.5 3.5 0 0 0 0 7z',
    'M16 5.2a3 3 0 0 1 0 5.6', 'M17.5 14.2c2 .6 3.5 2.6 3.5 5.3'],
  settings: ['M4 7h9', 'M17 7h3', 'M4 17h3', 'M11 17h9', 'M15 9.5a2.5 2.5 0 1 0 0-5 2.5 2.5 0 0 0 0 5z',
    'M9 19.5a2.5 2.5 0 1 0 0-5 2.5 2.5 0 0 0 0 5z'],
  logout: ['M14 4h5v16h-5', 'M9 8l-4 4 4 4', 'M5 12h10'],
  lock: ['M6 11h12v9H6z', 'M8.5 11V8a3.5 3.5 0 0 1 7 0v3'],
  send: ['M4 12 20 4l-6 16-3-7z', 'M11 13l9-9'],
  plus: ['M12 5v14', 'M5 12h14'],
  clip: ['M20 11.5l-8.2 8.2a5 5 0 0 1-7.1-7.1l8.5-8.5a3.3 3.3 0 0 1 4.7 4.7l-8.5 8.5a1.7 1.7 0 0 1-2.4-2.4l7.8-7.8'],
  files: ['M6 3h8l4 4v14H6z', 'M14 3v4h4', 'M9 12h6', 'M9 16h6'],
  pin: ['M9 4h6l-1 6 3 3H7l3-3z', 'M12 13v7'],
  bell: ['M6 16V11a6 6 0 0 1 12 0v5l2 2H4z', 'M10 20a2 2 0 0 0 4 0'],
  bell_off: ['M6 16V11a6 6 0 0 1 12 0v5l2 2H4z', 'M10 20a2 2 0 0 0 4 0', 'M4 4l16 16'],
};

export function icon(name, size = 20) {
  const NS = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('width', String(size));
  svg.setAttribute('height', String(size));
  svg.setAttribute('fill', 'none');
  svg.setAttribute('stroke', 'currentColor');
  svg.setAttribute('stroke-width', '1.8');
  svg.setAttribute('stroke-linecap', 'round');
  svg.setAttribute('stroke-linejoin', 'round');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('class', 'icon');
  for (const d of ICONS[name] || []) {
    const path = document.createElementNS(NS, 'path');
    path.setAttribute('d', d);
    svg.append(path);
  }
  return svg;
}
