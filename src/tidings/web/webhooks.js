// Admin page: outgoing webhooks (docs/integrations.md). Register one (its secret is
// shown once), list them, turn one off or on, send a test ping, rotate the secret,
// delete, and read each one's delivery log.
import { h, append, clear, morph, reconcile } from './dom.js';
import { t } from './i18n.js';
import { convTitle } from './names.js';

export const KINDS = ['message', 'message_edited', 'message_deleted', 'reaction',
  'member_added', 'member_removed', 'member_role_changed', 'conversation_created',
  'conversation_updated', 'file_updated', 'thread_updated', 'message_pinned', 'message_unpinned'];

function refusedText(ctx, err) {
  const field = err && err.details && err.details.field;
  if (err && err.code === 'invalid_request' && field === 'url') return t('webhooks.url_refused', { reason: err.message });
  if (err && err.code === 'invalid_request' && field === 'events') return t('webhooks.events_refused');
  if (err && err.code === 'invalid_operation' && err.details && err.details.limit) {
    return t('webhooks.cap_reached', { limit: String(err.details.limit) });
  }
  return ctx.errorText(err);
}

function when(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleString();
}

// The secret, once: a box to copy it from, that says it will not be shown again.
function secretBox(secret) {
  const input = h('input', { class: 'secret-value', readonly: true, value: secret, 'data-testid': 'webhook-secret',
    'aria-label': t('webhooks.secret'), onfocus: (e) => e.target.select() });
  return h('div', { class: 'card-box secret-box', role: 'status', 'data-testid': 'webhook-secret-box' },
    h('h3', {}, t('webhooks.secret')),
    h('p', {}, t('webhooks.secret_once')),
    h('div', { class: 'toolbar' }, input,
      h('button', { class: 'btn btn-small', type: 'button', onclick: async () => {
        input.select();
        try { await navigator.clipboard.writeText(secret); } catch { /* selected: copy by hand */ }
      } }, t('webhooks.copy'))));
}

export function renderWebhooks(body, ctx) {
  const { api, toast } = ctx;
  const tableBody = h('tbody', {});
  const formError = h('div', { class: 'form-error', role: 'alert' });
  const shown = h('div', {});
  const log = h('div', { class: 'card-box webhook-log', hidden: true, 'data-testid': 'webhook-log' });
  let openLog = null;
  // The webhooks as last loaded, by id: a row's buttons read theirs from here, so a row
  // kept across a reload (morph, below) acts on what it now shows.
  const current = new Map();

  const scopeSelect = h('select', { name: 'conversation_id', 'aria-label': t('webhooks.scope'),
    'data-testid': 'webhook-scope' },
  h('option', { value: '' }, t('webhooks.org_wide')),
  [...ctx.state.convs.values()].filter((c) => c.kind !== 'direct')
    .map((c) => h('option', { value: c.id }, convTitle(ctx, c))));
  const kindBoxes = KINDS.map((k) => h('label', { class: 'check' },
    h('input', { type: 'checkbox', name: 'events', value: k, checked: k === 'message', 'data-testid': `webhook-kind-${k}` }),
    h('span', {}, t(`webhooks.kind.${k}`))));

  const showSecret = (secret) => {
    clear(shown);
    shown.append(secretBox(secret));
  };

  const form = h('form', { class: 'inline-form card-box', 'data-testid': 'create-webhook-form', onsubmit: async (e) => {
    e.preventDefault();
    formError.textContent = '';
    const data = new FormData(form);
    const payload = { url: String(data.get('url')).trim(), events: data.getAll('events').map(String) };
    if (scopeSelect.value) payload.conversation_id = scopeSelect.value;
    if (!payload.events.length) {
      formError.textContent = t('webhooks.events_refused');
      return;
    }
    try {
      const res = await api.post('/webhooks', payload);
      showSecret(res.webhook.secret);
      toast(t('webhooks.created'));
      form.reset();
      load();
    } catch (err) {
      formError.textContent = refusedText(ctx, err);
    }
  } },
  h('h3', {}, t('webhooks.create')),
  h('div', { class: 'form-grid' },
    h('label', { class: 'field field-wide' }, h('span', {}, t('webhooks.url')),
      h('input', { name: 'url', type: 'url', required: true, autocomplete: 'off', placeholder: 'https://',
        'data-testid': 'webhook-url' })),
    h('label', { class: 'field' }, h('span', {}, t('webhooks.scope')), scopeSelect)),
  h('fieldset', { class: 'kinds' }, h('legend', {}, t('webhooks.events')), kindBoxes),
  h('p', { class: 'hint' }, t('webhooks.scope_hint')),
  h('div', { class: 'field field-button' },
    h('button', { class: 'btn btn-primary', type: 'submit', 'data-testid': 'create-webhook' }, t('admin.create'))),
  formError);

  const act = async (fn) => {
    try {
      await fn();
    } catch (err) {
      toast(refusedText(ctx, err), 'error');
    }
    load();
  };

  const showLog = async (w) => {
    openLog = w.id;
    log.hidden = false;
    clear(log);
    const rows = h('tbody', {});
    append(log, h('div', { class: 'toolbar' }, h('h3', {}, t('webhooks.log_of', { url: w.url.split('?')[0] })),
      h('button', { class: 'btn btn-small', type: 'button', 'data-testid': 'webhook-log-refresh',
        onclick: () => showLog(w) }, t('webhooks.refresh'))),
    h('div', { class: 'table-wrap' }, h('table', { class: 'table', 'data-testid': 'webhook-log-table' },
      h('thead', {}, h('tr', {}, h('th', {}, t('webhooks.at')), h('th', {}, t('webhooks.kind')),
        h('th', {}, t('webhooks.attempt')), h('th', {}, t('admin.status')), h('th', {}, t('webhooks.code')),
        h('th', {}, t('webhooks.latency')), h('th', {}, t('webhooks.error')))), rows)));
    try {
      const res = await api.get(`/webhooks/${encodeURIComponent(w.id)}/deliveries`, { limit: 100 });
      if (openLog !== w.id) return;
      for (const d of res.deliveries || []) {
        rows.append(h('tr', { 'data-testid': 'delivery-row', class: d.status === 'ok' ? '' : 'failed' },
          h('td', {}, when(d.at)),
          h('td', {}, d.kind === 'ping' ? t('webhooks.ping') : t(`webhooks.kind.${d.kind}`)),
          h('td', {}, String(d.attempt)),
          h('td', {}, h('span', { class: `status-pill ${d.status === 'ok' ? 'on' : 'off'}` }, t(`webhooks.status.${d.status}`))),
          h('td', {}, d.response_code == null ? '' : String(d.response_code)),
          h('td', {}, d.latency_ms == null ? '' : `${d.latency_ms} ms`),
          h('td', { class: 'cell-error' }, d.error || '')));
      }
      if (!(res.deliveries || []).length) rows.append(h('tr', {}, h('td', { colspan: '7', class: 'empty-list' }, t('webhooks.no_deliveries'))));
    } catch (err) {
      toast(ctx.errorText(err), 'error');
    }
  };

  const row = (w) => {
    const id = w.id;
    const now = () => current.get(id) || w;
    const scope = w.conversation_id ? convTitle(ctx, ctx.state.convs.get(w.conversation_id)) || w.conversation_id : t('webhooks.org_wide');
    const status = w.enabled ? t('webhooks.on') : t(`webhooks.off_${w.disabled_reason || 'manual'}`);
    return h('tr', { class: w.enabled ? '' : 'disabled', 'data-testid': 'webhook-row', dataset: { wid: w.id } },
      h('td', { class: 'cell-url' }, h('code', {}, w.url.split('?')[0])),
      h('td', { 'data-label': t('webhooks.events') }, w.events.map((k) => t(`webhooks.kind.${k}`)).join(', ')),
      h('td', { 'data-label': t('webhooks.scope') }, scope),
      h('td', { 'data-label': t('admin.status') },
        h('span', { class: `status-pill ${w.enabled ? 'on' : 'off'}`, 'data-testid': 'webhook-status' }, status),
        w.failures ? h('span', { class: 'card-sub' }, ` ${t('webhooks.failures', { n: w.failures })}`) : null),
      h('td', { class: 'cell-actions' },
        h('button', { class: 'btn btn-small', type: 'button', 'data-testid': w.enabled ? 'disable-webhook' : 'enable-webhook',
          onclick: () => act(async () => {
            const enabled = now().enabled;
            await api.patch(`/webhooks/${encodeURIComponent(id)}`, { enabled: !enabled });
            toast(enabled ? t('webhooks.disabled') : t('webhooks.enabled'));
          }) }, w.enabled ? t('admin.disable') : t('admin.enable')),
        h('button', { class: 'btn btn-small', type: 'button', 'data-testid': 'test-webhook',
          onclick: () => act(async () => {
            await api.post(`/webhooks/${encodeURIComponent(id)}/test`);
            toast(t('webhooks.ping_sent'));
          }) }, t('webhooks.test')),
        h('button', { class: 'btn btn-small', type: 'button', 'data-testid': 'webhook-deliveries',
          onclick: () => showLog(now()) }, t('webhooks.deliveries')),
        h('button', { class: 'btn btn-small', type: 'button', 'data-testid': 'rotate-webhook',
          onclick: async () => {
            if (!(await ctx.confirmDialog(t('webhooks.rotate_confirm'), { confirmLabel: t('webhooks.rotate') }))) return;
            act(async () => {
              const res = await api.post(`/webhooks/${encodeURIComponent(id)}/secret`);
              showSecret(res.webhook.secret);
            });
          } }, t('webhooks.rotate')),
        h('button', { class: 'btn btn-small btn-danger', type: 'button', 'data-testid': 'delete-webhook',
          onclick: async () => {
            if (!(await ctx.confirmDialog(t('webhooks.delete_confirm'), { confirmLabel: t('common.remove'), danger: true }))) return;
            act(async () => {
              await api.del(`/webhooks/${encodeURIComponent(id)}`);
              if (openLog === id) { openLog = null; log.hidden = true; }
              toast(t('webhooks.deleted'));
            });
          } }, t('common.remove'))));
  };

  let seq = 0;
  const load = async () => {
    const my = ++seq;
    try {
      const res = await api.get('/webhooks');
      if (my !== seq) return;
      const listed = res.webhooks || [];
      current.clear();
      for (const w of listed) current.set(w.id, w);
      // A reload follows every action; rows stay the same nodes (morph), so a click on a
      // row's button while the table reloads is not lost.
      const rows = new Map([...tableBody.children].filter((tr) => tr.dataset.wid).map((tr) => [tr.dataset.wid, tr]));
      reconcile(tableBody, listed.length
        ? listed.map((w) => (rows.has(w.id) ? morph(rows.get(w.id), row(w)) : row(w)))
        : [h('tr', {}, h('td', { colspan: '5', class: 'empty-list' }, t('webhooks.none')))]);
    } catch (err) {
      toast(ctx.errorText(err), 'error');
    }
  };

  append(body, form, shown,
    h('div', { class: 'card-box' },
      h('div', { class: 'toolbar' }, h('h3', {}, t('webhooks.title'))),
      h('div', { class: 'table-wrap' }, h('table', { class: 'table', 'data-testid': 'webhooks-table' },
        h('thead', {}, h('tr', {}, h('th', {}, t('webhooks.url')), h('th', {}, t('webhooks.events')),
          h('th', {}, t('webhooks.scope')), h('th', {}, t('admin.status')), h('th', {}, ''))),
        tableBody))),
    log);
  load();
}
