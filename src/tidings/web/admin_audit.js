// Admin page "Audit log": the entries, newest page first, filtered by action, actor,
// target and time range; an export of what the filters keep (JSON lines or CSV).
// REST: GET /audit?action=&actor_id=&target_id=&since=&until=&after=&limit=,
// GET /audit/export?format=jsonl|csv&... (a download).
import { h, append, clear } from './dom.js';
import { t } from './i18n.js';

const PAGE = 100;

export function renderAudit(body, ctx) {
  const { api, toast, errorText } = ctx;
  const input = (testid, placeholder, type = 'text') =>
    h('input', { type, class: 'input', placeholder, 'data-testid': testid, maxlength: '64' });
  const action = input('audit-action', t('audit.action'));
  const actor = input('audit-actor', t('audit.actor'));
  const target = input('audit-target', t('audit.target'));
  const since = input('audit-since', t('audit.since'), 'datetime-local');
  const until = input('audit-until', t('audit.until'), 'datetime-local');
  const format = h('select', { class: 'input', 'data-testid': 'audit-format' },
    h('option', { value: 'jsonl' }, t('audit.jsonl')), h('option', { value: 'csv' }, t('audit.csv')));
  const tbody = h('tbody', {});
  const more = h('div', { class: 'toolbar' });
  let after = 0;

  const iso = (el) => (el.value ? new Date(el.value).toISOString() : '');
  const filters = () => ({ action: action.value.trim(), actor_id: actor.value.trim(), target_id: target.value.trim(),
    since: iso(since), until: iso(until) });

  const row = (e) => h('tr', { 'data-testid': 'audit-row' },
    h('td', {}, String(e.seq)),
    h('td', { 'data-label': t('audit.at') }, new Date(e.at).toLocaleString()),
    h('td', { 'data-label': t('audit.action') }, h('code', {}, e.action)),
    h('td', { 'data-label': t('audit.actor') }, e.actor_id || '—'),
    h('td', { 'data-label': t('audit.target') }, e.target_id || '—'),
    h('td', { 'data-label': t('audit.details') }, h('code', { class: 'job-error' }, JSON.stringify(e.details))));

  async function load(fresh) {
    if (fresh) { after = 0; clear(tbody); }
    try {
      const res = await api.get('/audit', { ...filters(), after, limit: PAGE });
      for (const e of res.entries) tbody.append(row(e));
      if (fresh && !res.entries.length) tbody.append(h('tr', {}, h('td', { colspan: '6', class: 'empty-list' }, t('common.no_results'))));
      after = res.next;
      clear(more);
      if (res.entries.length === PAGE) {
        more.append(h('button', { class: 'btn btn-small', type: 'button', 'data-testid': 'audit-more', onclick: () => load(false) }, t('audit.more')));
      }
    } catch (err) {
      toast(errorText(err), 'error');
    }
  }

  async function exportLog() {
    try {
      const { blob, headers } = await api.download('/audit/export', { ...filters(), format: format.value });
      const url = URL.createObjectURL(blob);
      const a = h('a', { href: url, download: `tidings-audit.${format.value}` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      toast(headers.get('X-Tidings-Truncated') === 'true' ? t('audit.exported_truncated') : t('audit.exported'));
    } catch (err) {
      toast(errorText(err), 'error');
    }
  }

  const form = h('form', { class: 'toolbar-actions', 'data-testid': 'audit-filters', onsubmit: (ev) => { ev.preventDefault(); load(true); } },
    action, actor, target, since, until,
    h('button', { class: 'btn btn-small btn-primary', type: 'submit', 'data-testid': 'audit-apply' }, t('audit.apply')),
    format,
    h('button', { class: 'btn btn-small', type: 'button', 'data-testid': 'audit-export', onclick: exportLog }, t('audit.export')));
  append(body, h('div', { class: 'card-box' },
    h('div', { class: 'toolbar' }, h('h3', {}, t('audit.title'))), form,
    h('div', { class: 'table-wrap' }, h('table', { class: 'table', 'data-testid': 'audit-table' },
      h('thead', {}, h('tr', {}, ['#', t('audit.at'), t('audit.action'), t('audit.actor'), t('audit.target'), t('audit.details')].map((x) => h('th', {}, x)))),
      tbody)), more));
  load(true);
}
