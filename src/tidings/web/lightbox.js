// The lightbox: an image of a message, large (its `preview` size, 1280 px), over the
// page. A modal dialog: focus moves into it and stays there (Tab cycles its buttons),
// Esc or a click beside the image closes it and focus returns to the thumbnail;
// ← and → go through the message's other images; a button downloads the original.
import { h, clear, bdi } from './dom.js';
import { t, language } from './i18n.js';
import { formatSize } from './file_kinds.js';
import { downloadFile } from './files.js'; // (files.js imports this module too: used only when called)

let open = null; // the lightbox on screen: { close }

export function openLightbox(ctx, files, index = 0) {
  if (!files || !files.length) return null;
  if (open) open.close();
  const previous = document.activeElement;
  let at = Math.max(0, Math.min(index, files.length - 1));
  const stage = h('div', { class: 'lightbox-stage' });
  const caption = h('div', { class: 'lightbox-caption', 'data-testid': 'lightbox-caption' });
  const many = files.length > 1;
  const prev = many ? h('button', { class: 'icon-btn lightbox-nav', type: 'button', 'aria-label': t('files.previous'),
    title: t('files.previous'), onclick: () => show(at - 1) }, '‹') : null;
  const next = many ? h('button', { class: 'icon-btn lightbox-nav', type: 'button', 'aria-label': t('files.next'),
    title: t('files.next'), onclick: () => show(at + 1) }, '›') : null;
  const download = h('button', { class: 'btn btn-small', type: 'button', 'data-testid': 'lightbox-download',
    onclick: () => downloadFile(ctx, files[at]) }, t('files.download'));
  const closeBtn = h('button', { class: 'icon-btn lightbox-close', type: 'button', 'data-testid': 'lightbox-close',
    'aria-label': t('common.close'), title: t('common.close'), onclick: () => close() }, '✕');
  const dialog = h('div', { class: 'lightbox', role: 'dialog', 'aria-modal': 'true', 'data-testid': 'lightbox',
    'aria-label': files[at].name, onmousedown: (e) => { if (e.target === dialog || e.target === stage) close(); } },
  h('div', { class: 'lightbox-bar' }, caption, download, closeBtn),
  h('div', { class: 'lightbox-body' }, prev, stage, next));

  function show(i) {
    at = (i + files.length) % files.length;
    const f = files[at];
    dialog.setAttribute('aria-label', f.name);
    clear(stage);
    const img = h('img', { class: 'lightbox-img', alt: f.name, 'data-testid': 'lightbox-img' });
    ctx.api.fileLink(f.id, f.has_thumbnail ? 'preview' : 'original')
      .then((url) => { img.src = url; })
      .catch(() => stage.replaceChildren(h('p', { class: 'lightbox-error' }, t('files.unavailable'))));
    stage.append(img);
    clear(caption);
    caption.append(bdi(f.name), ` · ${formatSize(f.size, language())}`,
      many ? ` · ${at + 1}/${files.length}` : '');
  }

  const focusable = () => [...dialog.querySelectorAll('button')].filter((b) => !b.disabled);
  function onKey(e) {
    if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      close();
    } else if (many && e.key === 'ArrowLeft') {
      e.preventDefault();
      show(at - 1);
    } else if (many && e.key === 'ArrowRight') {
      e.preventDefault();
      show(at + 1);
    } else if (e.key === 'Tab') {
      const items = focusable();
      const i = items.indexOf(document.activeElement);
      e.preventDefault();
      items[(i + (e.shiftKey ? -1 : 1) + items.length) % items.length].focus();
    }
  }
  function close() {
    if (!dialog.isConnected) return;
    dialog.remove();
    document.removeEventListener('keydown', onKey, true);
    open = null;
    if (previous && previous.isConnected && previous.focus) previous.focus();
  }

  show(at);
  document.body.append(dialog);
  document.addEventListener('keydown', onKey, true);
  closeBtn.focus();
  open = { close };
  return open;
}
