// Admin page "Usage": messages and active users per day (a small inline SVG chart, no
// library) and storage. REST: GET /admin/stats/usage?days=N.
import { h, append, clear } from './dom.js';
import { t } from './i18n.js';

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs, children = []) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c);
  return el;
}

// A line chart of two series over the days: messages and active users.
export function chart(days) {
  const width = 640, height = 180, pad = 28;
  const top = Math.max(1, ...days.map((d) => Math.max(d.messages, d.active_users)));
  const x = (i) => pad + (days.length < 2 ? 0 : (i * (width - 2 * pad)) / (days.length - 1));
  const y = (v) => height - pad - (v * (height - 2 * pad)) / top;
  const line = (key, cls) => svg('polyline', {
    class: cls, fill: 'none', 'stroke-width': 2,
    points: days.map((d, i) => `${x(i).toFixed(1)},${y(d[key]).toFixed(1)}`).join(' '),
  });
  const title = svg('title', {});
  title.textContent = t('usage.chart_title');
  return svg('svg', { viewBox: `0 0 ${width} ${height}`, class: 'usage-chart', role: 'img', 'data-testid': 'usage-chart' }, [
    title,
    svg('line', { x1: pad, y1: height - pad, x2: width - pad, y2: height - pad, stroke: 'currentColor', 'stroke-opacity': 0.3 }),
    line('messages', 'usage-messages'),
    line('active_users', 'usage-active'),
  ]);
}

function bytes(n) {
  if (n < 1024) return t('usage.bytes', { n });
  if (n < 1024 * 1024) return t('usage.kib', { n: (n / 1024).toFixed(1) });
  if (n < 1024 ** 3) return t('usage.mib', { n: (n / 1024 ** 2).toFixed(1) });
  return t('usage.gib', { n: (n / 1024 ** 3).toFixed(2) });
}

export function renderUsage(body, ctx) {
  const { api, toast, errorText } = ctx;
  const days = h('select', { class: 'input', 'data-testid': 'usage-days' },
    [7, 30, 90].map((n) => h('option', { value: String(n), selected: n === 30 }, t('usage.last_days', { n }))));
  const out = h('div', { 'data-testid': 'usage' });
  async function load() {
    try {
      const res = await api.get('/admin/stats/usage', { days: days.value });
      clear(out);
      const total = res.days.reduce((s, d) => s + d.messages, 0);
      append(out,
        chart(res.days),
        h('p', { class: 'card-sub' },
          h('span', { class: 'usage-key usage-messages' }, t('usage.messages')), ' · ',
          h('span', { class: 'usage-key usage-active' }, t('usage.active_users'))),
        h('p', { 'data-testid': 'usage-total' }, t('usage.total_messages', { n: total })),
        h('p', { 'data-testid': 'usage-storage' }, t('usage.storage', { db: bytes(res.storage.database_bytes), blobs: bytes(res.storage.blob_bytes) })),
        h('div', { class: 'table-wrap' }, h('table', { class: 'table', 'data-testid': 'usage-table' },
          h('thead', {}, h('tr', {}, [t('usage.day'), t('usage.messages'), t('usage.active_users')].map((x) => h('th', {}, x)))),
          h('tbody', {}, [...res.days].reverse().map((d) => h('tr', { 'data-testid': 'usage-row' },
            h('td', {}, d.day), h('td', {}, String(d.messages)), h('td', {}, String(d.active_users))))))));
    } catch (err) {
      toast(errorText(err), 'error');
    }
  }
  days.addEventListener('change', load);
  append(body, h('div', { class: 'card-box' }, h('div', { class: 'toolbar' }, h('h3', {}, t('usage.title')), days), out));
  load();
}
