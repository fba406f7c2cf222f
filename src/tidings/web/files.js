// Files on screen: a message's attachments in the timeline (image thumbnails that open
// the lightbox, file cards with icon, name, size and download), the composer's tray of
// uploads (progress bar and cancel per file; drag-and-drop and paste feed it too), and
// a conversation's "Files" panel. The pure parts (sizes, kinds, the tray's model) are
// file_kinds.js; the lightbox is lightbox.js. Images come through signed links
// (POST /files/{id}/link), so an <img> needs no token (docs/web.md).
import { h, append, clear, bdi } from './dom.js';
import { t, language } from './i18n.js';
import { fmtDateTime } from './format.js';
import {
  formatSize, fileIcon, attachmentView, trayAdded, trayProgress, trayDone, trayFailed, trayRemoved, trayFraction,
  traySendable,
} from './file_kinds.js';
import { openLightbox } from './lightbox.js';

const THUMB_BOX = 320; // px: the thumbnail's box in the timeline (the server makes 320 px thumbnails)
const PANEL_PAGE = 50;

export const sizeText = (n) => formatSize(n, language());

// Give an <img> the signed link of `variant` of `file` (once it is known).
export function loadImage(ctx, img, file, variant) {
  ctx.api.fileLink(file.id, variant).then((url) => { img.src = url; }).catch(() => {
    img.replaceWith(h('span', { class: 'att-broken' }, t('files.unavailable')));
  });
}

// Download the original bytes through a signed link (the browser streams it to disk;
// nothing is held in memory here).
export async function downloadFile(ctx, file) {
  try {
    const url = await ctx.api.fileLink(file.id, 'original');
    const a = h('a', { href: url, download: file.name || 'file', hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
  } catch (err) {
    ctx.toast(ctx.errorText(err), 'error');
  }
}

// The box an image's thumbnail takes before it has loaded (no jump when it does).
function thumbSize(file) {
  const w = Number(file.width) || THUMB_BOX;
  const hgt = Number(file.height) || Math.round(THUMB_BOX * 0.75);
  const scale = Math.min(1, THUMB_BOX / Math.max(w, hgt));
  return { width: Math.max(24, Math.round(w * scale)), height: Math.max(24, Math.round(hgt * scale)) };
}

function fileCard(ctx, file, { quarantined = false, processing = false } = {}) {
  return h('div', { class: `file-card${quarantined ? ' quarantined' : ''}`, 'data-testid': 'file-card',
    dataset: { fileId: file.id } },
  h('span', { class: 'file-icon', 'aria-hidden': 'true' }, quarantined ? '⛔' : fileIcon(file.content_type, file.name)),
  h('span', { class: 'file-meta' },
    h('span', { class: 'file-name', 'data-testid': 'file-name', title: file.name }, bdi(file.name)),
    h('span', { class: 'file-size', 'data-testid': 'file-size' },
      quarantined ? t('files.quarantined') : processing ? `${sizeText(file.size)} · ${t('files.processing')}` : sizeText(file.size))),
  quarantined ? null : h('button', { class: 'icon-btn file-download', type: 'button', 'data-testid': 'file-download',
    title: t('files.download'), 'aria-label': t('files.download_name', { name: file.name }),
    onclick: (e) => { e.stopPropagation(); downloadFile(ctx, file); } }, '⤓'));
}

// A message's attachments, in order: images as thumbnails, the rest as cards.
export function attachmentsNode(ctx, m) {
  const files = (m.attachments || []).filter(Boolean);
  if (!files.length || m.deleted) return null;
  const images = files.filter((f) => attachmentView(f) === 'image');
  return h('div', { class: 'attachments', 'data-testid': 'attachments' }, files.map((f) => {
    const view = attachmentView(f);
    if (view !== 'image') {
      return fileCard(ctx, f, { quarantined: view === 'quarantined', processing: view === 'processing' });
    }
    const { width, height } = thumbSize(f);
    const img = h('img', { class: 'att-thumb', alt: f.name, width: String(width), height: String(height),
      loading: 'lazy', decoding: 'async', 'data-testid': 'att-thumb' });
    loadImage(ctx, img, f, 'thumbnail');
    return h('button', { class: 'att-image', type: 'button', 'data-testid': 'att-image',
      'aria-label': t('files.open_image', { name: f.name }), title: f.name, dataset: { fileId: f.id },
      onclick: (e) => { e.stopPropagation(); openLightbox(ctx, images, images.indexOf(f)); } }, img);
  }));
}

// ---------------------------------------------------------------- the composer's tray
// One tray per conversation, kept while another is open (uploads go on meanwhile).
const trays = new Map(); // cid -> { list, aborts: Map(key -> abort), views: Set(render) }
let uploadSeq = 0;

function trayOf(cid) {
  let tray = trays.get(cid);
  if (!tray) {
    tray = { list: [], aborts: new Map(), views: new Set() };
    trays.set(cid, tray);
  }
  return tray;
}

// The uploads of `cid`'s composer: `el` to put in the composer, `add(files)` (from the
// attach button, a drop or a paste), `sendable()` ({ ids, busy }), `sent()` (after a
// send: the finished ones leave the tray), `detach()` when the view goes.
export function createUploadTray(ctx, cid) {
  const tray = trayOf(cid);
  const el = h('ul', { class: 'upload-tray', 'data-testid': 'upload-tray', 'aria-live': 'polite', hidden: true });
  const changed = (list) => {
    tray.list = list;
    for (const render of tray.views) render();
  };
  let shown = false;
  function render() {
    if (el.isConnected) shown = true;
    else if (shown) { // the conversation's view is gone
      tray.views.delete(render);
      return;
    }
    clear(el);
    el.hidden = !tray.list.length;
    for (const u of tray.list) {
      const pct = Math.round(trayFraction(u) * 100);
      append(el, h('li', { class: `upload upload-${u.status}`, 'data-testid': 'upload', dataset: { status: u.status } },
        h('span', { class: 'file-icon', 'aria-hidden': 'true' }, fileIcon(u.type, u.name)),
        h('span', { class: 'upload-meta' },
          h('span', { class: 'file-name', title: u.name }, bdi(u.name)),
          u.status === 'uploading'
            ? h('progress', { class: 'upload-progress', max: '100', value: String(pct), 'data-testid': 'upload-progress',
              'aria-label': t('files.uploading_name', { name: u.name }) })
            : null,
          h('span', { class: 'file-size' }, u.status === 'failed' ? u.error
            : u.status === 'done' ? sizeText(u.size) : t('files.progress', { done: sizeText(u.loaded), total: sizeText(u.size) }))),
        h('button', { class: 'icon-btn', type: 'button', 'data-testid': u.status === 'uploading' ? 'upload-cancel' : 'upload-remove',
          title: u.status === 'uploading' ? t('files.cancel_upload') : t('common.remove'),
          'aria-label': `${u.status === 'uploading' ? t('files.cancel_upload') : t('common.remove')}: ${u.name}`,
          onclick: () => remove(u.key) }, '✕')));
    }
  }
  function remove(key) {
    const abort = tray.aborts.get(key);
    tray.aborts.delete(key);
    if (abort) abort();
    changed(trayRemoved(tray.list, key));
  }
  function add(fileList) {
    for (const file of fileList || []) {
      if (!file) continue;
      uploadSeq += 1;
      const key = `u${uploadSeq}`;
      const name = file.name || t('files.pasted_image');
      changed(trayAdded(tray.list, { key, name, size: file.size, type: file.type }));
      const named = file.name ? file : new File([file], name, { type: file.type });
      const { promise, abort } = ctx.api.upload(named, {
        onProgress: (loaded) => changed(trayProgress(tray.list, key, loaded)),
      });
      tray.aborts.set(key, abort);
      promise.then((f) => {
        tray.aborts.delete(key);
        changed(trayDone(tray.list, key, f));
      }, (err) => {
        tray.aborts.delete(key);
        if (err.code === 'aborted') return; // cancelled: removed already
        changed(trayFailed(tray.list, key, ctx.errorText(err)));
      });
    }
  }
  tray.views.add(render);
  render();
  return {
    el,
    add,
    sendable: () => traySendable(tray.list),
    sent() {
      changed(tray.list.filter((u) => u.status !== 'done'));
    },
    detach() {
      tray.views.delete(render);
    },
  };
}

// Files dragged over `target` are handed to `onFiles` (a highlight shows where they go).
export function acceptDrops(target, onFiles) {
  let depth = 0;
  const hasFiles = (e) => e.dataTransfer && [...(e.dataTransfer.types || [])].includes('Files');
  target.addEventListener('dragenter', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth += 1;
    target.classList.add('drop-target');
  });
  target.addEventListener('dragover', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
  });
  target.addEventListener('dragleave', () => {
    depth = Math.max(0, depth - 1);
    if (!depth) target.classList.remove('drop-target');
  });
  target.addEventListener('drop', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth = 0;
    target.classList.remove('drop-target');
    if (e.dataTransfer.files && e.dataTransfer.files.length) onFiles([...e.dataTransfer.files]);
  });
}

// Files pasted into the composer (an image copied from somewhere): uploaded, not pasted as text.
export function pastedFiles(e) {
  const items = (e.clipboardData && e.clipboardData.items) || [];
  const files = [];
  for (const item of items) {
    if (item.kind === 'file') {
      const f = item.getAsFile();
      if (f) files.push(f);
    }
  }
  return files;
}

// ---------------------------------------------------------------- the "Files" panel
// Every file shared in `cid`, newest first (GET /conversations/{cid}/files), in a dialog.
export function openFilesPanel(ctx, cid) {
  ctx.openModal(t('files.panel_title'), () => {
    const list = h('ul', { class: 'files-panel', 'data-testid': 'files-panel' });
    const more = h('button', { class: 'btn btn-small', type: 'button', hidden: true, 'data-testid': 'files-more' },
      t('files.more'));
    const status = h('p', { class: 'hint' }, t('common.loading'));
    let cursor = null;
    const row = (entry) => {
      const f = entry.file;
      const view = attachmentView(f);
      let lead;
      if (view === 'image') {
        const img = h('img', { class: 'panel-thumb', alt: '', width: '40', height: '40', loading: 'lazy' });
        loadImage(ctx, img, f, 'thumbnail');
        lead = h('button', { class: 'att-image panel-image', type: 'button', 'aria-label': t('files.open_image', { name: f.name }),
          onclick: () => openLightbox(ctx, [f], 0) }, img);
      } else {
        lead = h('span', { class: 'file-icon', 'aria-hidden': 'true' }, view === 'quarantined' ? '⛔' : fileIcon(f.content_type, f.name));
      }
      return h('li', { class: 'files-panel-row', 'data-testid': 'files-panel-row', dataset: { fileId: f.id, seq: entry.seq } },
        lead,
        h('span', { class: 'file-meta' },
          h('span', { class: 'file-name', title: f.name }, bdi(f.name)),
          h('span', { class: 'file-size' }, [sizeText(f.size), bdi(ctx.userName(entry.sender_id) || ''),
            entry.sent_at ? fmtDateTime(entry.sent_at) : ''].filter(Boolean).map((x, i) => (i ? [' · ', x] : x)))),
        view === 'quarantined' ? h('span', { class: 'hint' }, t('files.quarantined'))
          : h('button', { class: 'icon-btn file-download', type: 'button', title: t('files.download'),
            'aria-label': t('files.download_name', { name: f.name }), onclick: () => downloadFile(ctx, f) }, '⤓'));
    };
    const load = async () => {
      more.disabled = true;
      try {
        const res = await ctx.api.get(`/conversations/${encodeURIComponent(cid)}/files`, { limit: PANEL_PAGE, cursor });
        for (const entry of res.files || []) if (entry && entry.file) list.append(row(entry));
        cursor = res.next_cursor || null;
        more.hidden = !cursor;
        status.textContent = list.childNodes.length ? '' : t('files.none');
        status.hidden = !!list.childNodes.length;
      } catch (err) {
        status.hidden = false;
        status.textContent = ctx.errorText(err);
      } finally {
        more.disabled = false;
      }
    };
    more.addEventListener('click', load);
    load();
    return h('div', { class: 'modal-body' }, status, list, more);
  }, { wide: true, testid: 'files-dialog' });
}
