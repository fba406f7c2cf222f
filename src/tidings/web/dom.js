// Small DOM helpers. User text only ever goes into text nodes or attributes set
// through the DOM API; nothing here assigns innerHTML.

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

export function append(el, children) {
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

const PALETTE = ['#3b6fd9', '#d9534f', '#2e9d6a', '#9b59b6', '#e67e22', '#16a2b8', '#c2417e', '#5d6d7e',
  '#7a9a01', '#b8860b'];

export function colorFor(id) {
  let hash = 0;
  for (const ch of String(id)) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return PALETTE[hash % PALETTE.length];
}

export function initials(name) {
  const text = String(name || '?').trim();
  if (!text) return '?';
  const chars = [...text];
  // CJK names: the last one or two characters read best (given name).
  if (/[\u3400-\u9fff]/.test(chars[0])) return chars.length > 2 ? chars.slice(-2).join('') : chars.join('');
  const words = text.split(/[\s._-]+/).filter(Boolean);
  if (words.length >= 2) return ([...words[0]][0] + [...words[1]][0]).toUpperCase();
  return chars.slice(0, 2).join('').toUpperCase();
}

export function avatar(id, name, { size = 'md', presence = null } = {}) {
  return h('span', { class: `avatar avatar-${size}`, style: { background: colorFor(id) }, 'aria-hidden': 'true' },
    initials(name),
    presence ? h('span', { class: `presence-dot presence-${presence}`, dataset: { uid: id } }) : null);
}
