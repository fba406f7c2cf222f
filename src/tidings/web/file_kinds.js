// Files in the web client, the pure part (no DOM, no network): sizes as people read
// them, the kind of a file (for its card's icon), which attachments show as images,
// a message gaining its thumbnail (`file_updated`), and the composer's tray of
// uploads (added, progressing, done, failed, removed). files.js and composer.js build
// the screen from these; tests/web/files.test.mjs checks them under Node.

const UNITS = ['B', 'KB', 'MB', 'GB', 'TB'];

// 1536 -> "1.5 KB" (binary multiples, as file managers show them); `locale` picks the
// decimal separator.
export function formatSize(bytes, locale = 'en') {
  let n = Number(bytes);
  if (!Number.isFinite(n) || n < 0) return '';
  let unit = 0;
  while (n >= 1024 && unit < UNITS.length - 1) {
    n /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || n >= 100 ? 0 : 1;
  let text;
  try {
    text = new Intl.NumberFormat(locale, { maximumFractionDigits: digits }).format(n);
  } catch {
    text = n.toFixed(digits).replace(/\.0$/, '');
  }
  return `${text} ${UNITS[unit]}`;
}

const BY_EXTENSION = {
  pdf: 'pdf',
  zip: 'archive', gz: 'archive', tgz: 'archive', bz2: 'archive', xz: 'archive', '7z': 'archive', rar: 'archive', tar: 'archive',
  doc: 'document', docx: 'document', odt: 'document', rtf: 'document', pages: 'document',
  xls: 'spreadsheet', xlsx: 'spreadsheet', ods: 'spreadsheet', csv: 'spreadsheet', numbers: 'spreadsheet',
  ppt: 'presentation', pptx: 'presentation', odp: 'presentation', key: 'presentation',
  txt: 'text', md: 'text', log: 'text',
  js: 'code', mjs: 'code', ts: 'code', py: 'code', go: 'code', rs: 'code', c: 'code', h: 'code', java: 'code',
  json: 'code', yaml: 'code', yml: 'code', toml: 'code', sh: 'code', sql: 'code', html: 'code', css: 'code', xml: 'code',
};

// The kind of a file, for its icon: image | video | audio | pdf | archive | document |
// spreadsheet | presentation | text | code | file. The sniffed content type first,
// then the name's extension (a type the server could not tell is
// application/octet-stream).
export function fileKind(contentType, name = '') {
  const type = String(contentType || '').toLowerCase().split(';')[0].trim();
  const [major, minor = ''] = type.split('/');
  if (major === 'image') return 'image';
  if (major === 'video') return 'video';
  if (major === 'audio') return 'audio';
  if (minor === 'pdf') return 'pdf';
  if (/zip|x-tar|gzip|x-7z|x-rar|x-bzip|x-xz|compressed/.test(minor)) return 'archive';
  if (/spreadsheet|ms-excel|csv/.test(minor)) return 'spreadsheet';
  if (/presentation|ms-powerpoint/.test(minor)) return 'presentation';
  if (/wordprocessing|msword|opendocument\.text|rtf/.test(minor)) return 'document';
  if (/json|javascript|xml|x-python|x-sh|yaml|toml|sql/.test(minor)) return 'code';
  const ext = /\.([a-z0-9]{1,8})$/i.exec(String(name || ''));
  const byName = ext ? BY_EXTENSION[ext[1].toLowerCase()] : undefined;
  if (byName) return byName;
  if (major === 'text') return 'text';
  return 'file';
}

// The icon (a glyph, no image) of each kind.
export const KIND_ICONS = {
  image: '🖼', video: '🎞', audio: '🎵', pdf: '📕', archive: '🗜', document: '📄', spreadsheet: '📊',
  presentation: '📽', text: '📝', code: '⌨', file: '📎',
};
export const fileIcon = (contentType, name) => KIND_ICONS[fileKind(contentType, name)];

// Images a browser shows inline (never SVG: the server serves it as an attachment).
const INLINE_IMAGES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/avif', 'image/bmp']);

// How an attachment is shown in the timeline: 'image' (a thumbnail, then the lightbox),
// 'processing' (an image whose thumbnail is not made yet), 'quarantined' (the virus scan
// flagged it: no download), or 'card' (icon, name, size, download).
export function attachmentView(file) {
  if (!file) return 'card';
  if (file.status === 'quarantined') return 'quarantined';
  const type = String(file.content_type || '').toLowerCase();
  if (!INLINE_IMAGES.has(type)) return 'card';
  if (file.has_thumbnail) return 'image';
  if (file.status === 'processing') return 'processing';
  return 'card';
}

// `message` with the attachment `file` (by id) replaced: the thumbnail arrived, or the
// scan quarantined it. The same message when it does not carry that file, or carries
// it as it is already.
export function withFileUpdate(message, file) {
  if (!message || !file || !Array.isArray(message.attachments)) return message;
  let changed = false;
  const attachments = message.attachments.map((a) => {
    if (!a || a.id !== file.id) return a;
    if (JSON.stringify(a) === JSON.stringify(file)) return a;
    changed = true;
    return file;
  });
  return changed ? { ...message, attachments } : message;
}

// ---------------------------------------------------------------- the composer's tray
// A tray is a list of uploads [{ key, name, size, type, status, loaded, file, error }]:
// status 'uploading' | 'done' | 'failed'. Each function returns a new list.

export function trayAdded(tray, { key, name, size, type }) {
  return [...tray, { key, name, size, type, status: 'uploading', loaded: 0, file: null, error: null }];
}
export function trayProgress(tray, key, loaded) {
  return tray.map((u) => (u.key === key && u.status === 'uploading' ? { ...u, loaded: Math.min(loaded, u.size || loaded) } : u));
}
export function trayDone(tray, key, file) {
  return tray.map((u) => (u.key === key ? { ...u, status: 'done', loaded: u.size, file } : u));
}
export function trayFailed(tray, key, error) {
  return tray.map((u) => (u.key === key ? { ...u, status: 'failed', error } : u));
}
export function trayRemoved(tray, key) {
  return tray.filter((u) => u.key !== key);
}
// Share of an upload sent, 0..1.
export function trayFraction(u) {
  if (u.status === 'done') return 1;
  return u.size ? Math.min(1, u.loaded / u.size) : 0;
}
// What a send may carry: { ids, names, busy }: the ids (and names) of the finished
// uploads in order, and whether one is still uploading (then the send waits).
export function traySendable(tray) {
  const done = tray.filter((u) => u.status === 'done' && u.file);
  return {
    ids: done.map((u) => u.file.id),
    names: done.map((u) => u.file.name || u.name),
    busy: tray.some((u) => u.status === 'uploading'),
  };
}

// A message's body when only files are sent (the server wants a body): their names.
export function filesBody(names) {
  return names.join(', ');
}
