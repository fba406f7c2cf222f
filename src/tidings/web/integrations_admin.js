// The admin page's Integrations tab: slash commands (a URL, signed, or a bot answers
// them) and incoming webhooks (secret URLs that post into one conversation). Secrets
// and URLs are shown once, when made or renewed: the server keeps only what checks them.
import { h, append, clear, bdi } from './dom.js';
import { t, isolate } from './i18n.js';
import { fmtDateTime } from './format.js';

const enc = encodeURIComponent;

// A secret shown once, with a copy button (and, for a webhook URL, a curl to try it).
function onceBox(label, value, { curl = false, testid = 'once-value' } = {}) {
  const copy = h('button', { class: 'btn btn-small', type: 'button', onclick: async () => {
    try {
      await navigator.clipboard.writeText(value);
      copy.textContent = t('integrations.copied');
    } catch { /* select it by hand */ }
  } }, t('integrations.copy'));
  return h('div', { class: 'card-box once-box', role: 'status', 'data-testid': 'once-box' },
    h('div', { class: 'card-sub' }, label),
    h('code', { class: 'once-value', 'data-testid': testid }, value),
    copy,
    curl ? h('pre', { class: 'once-curl' },
      `curl -X POST -H 'Content-Type: application/json' -d '{"text": "Hello"}' ${value}`) : null);
}

export function renderIntegrations(body, ctx) {
  const commands = h('div', {});
  const hooks = h('div', {});
  append(body, commands, hooks);
  renderCommands(commands, ctx);
  renderHooks(hooks, ctx);
}

function renderCommands(box, ctx) {
  const { api, toast, errorText } = ctx;
  const tableBody = h('tbody', {});
  const shown = h('div', {});
  const formError = h('div', { class: 'form-error', role: 'alert' });
  const botSelect = h('select', { name: 'bot_id', 'aria-label': t('integrations.bot'), 'data-testid': 'command-bot' },
    h('option', { value: '' }, t('integrations.choose_bot')));
  const urlInput = h('input', { name: 'url', type: 'url', placeholder: 'https://', autocomplete: 'off',
    'data-testid': 'command-url' });
  const kind = h('select', { name: 'target', 'aria-label': t('integrations.target'), 'data-testid': 'command-target',
    onchange: () => setKind() },
  h('option', { value: 'url' }, t('integrations.target_url')), h('option', { value: 'bot' }, t('integrations.target_bot')));
  const urlField = h('label', { class: 'field' }, h('span', {}, t('integrations.url')), urlInput);
  const botField = h('label', { class: 'field', hidden: true }, h('span', {}, t('integrations.bot')), botSelect);
  const setKind = () => {
    urlField.hidden = kind.value !== 'url';
    botField.hidden = kind.value !== 'bot';
  };

  const form = h('form', { class: 'inline-form card-box', 'data-testid': 'create-command-form', onsubmit: async (e) => {
    e.preventDefault();
    formError.textContent = '';
    clear(shown);
    const data = new FormData(form);
    const payload = {
      name: String(data.get('name')).trim().replace(/^\//, ''),
      description: String(data.get('description')).trim(),
      usage: String(data.get('usage')).trim(),
    };
    if (kind.value === 'url') payload.url = urlInput.value.trim();
    else payload.bot_id = botSelect.value;
    try {
      const res = await api.post('/commands', payload);
      toast(t('integrations.command_created', { name: res.command.name }));
      if (res.secret) {
        shown.append(onceBox(t('integrations.secret_once', { name: res.command.name }), res.secret,
          { testid: 'command-secret-value' }));
      }
      form.reset();
      setKind();
      load();
      ctx.loadCommands();
    } catch (err) {
      formError.textContent = err.code === 'conflict' ? t('integrations.name_taken') : errorText(err);
    }
  } },
  h('h3', {}, t('integrations.new_command')),
  h('div', { class: 'form-grid' },
    h('label', { class: 'field' }, h('span', {}, t('integrations.command_name')),
      h('input', { name: 'name', required: true, maxlength: '33', placeholder: '/deploy', autocomplete: 'off',
        'data-testid': 'command-name' })),
    h('label', { class: 'field' }, h('span', {}, t('integrations.target')), kind),
    urlField, botField,
    h('label', { class: 'field' }, h('span', {}, t('integrations.description')),
      h('input', { name: 'description', maxlength: '200', autocomplete: 'off', 'data-testid': 'command-description' })),
    h('label', { class: 'field' }, h('span', {}, t('integrations.usage')),
      h('input', { name: 'usage', maxlength: '100', placeholder: '[service] [version]', autocomplete: 'off' })),
    h('div', { class: 'field field-button' },
      h('button', { class: 'btn btn-primary', type: 'submit', 'data-testid': 'create-command' }, t('admin.create')))),
  formError);

  const act = async (fn) => {
    try {
      await fn();
    } catch (err) {
      toast(errorText(err), 'error');
    }
    load();
    ctx.loadCommands();
  };
  const row = (c, bots) => h('tr', { class: c.disabled ? 'disabled' : '', 'data-testid': 'command-row' },
    h('td', {}, h('div', { class: 'card-title command-name' }, `/${c.name}`),
      c.usage ? h('div', { class: 'card-sub' }, bdi(c.usage)) : null),
    h('td', { 'data-label': t('integrations.target') }, c.target === 'bot'
      ? `${t('integrations.target_bot')}: ${isolate(bots.get(c.user_id) || ctx.userName(c.user_id))}`
      : h('code', {}, c.url || '')),
    h('td', { 'data-label': t('integrations.description') }, bdi(c.description || '')),
    h('td', { 'data-label': t('admin.status') },
      h('span', { class: `status-pill ${c.disabled ? 'off' : 'on'}` }, c.disabled ? t('admin.disabled') : t('admin.active'))),
    h('td', { class: 'cell-actions' },
      h('button', { class: 'btn btn-small', type: 'button', 'data-testid': c.disabled ? 'enable-command' : 'disable-command',
        onclick: () => act(() => api.patch(`/commands/${enc(c.id)}`, { disabled: !c.disabled })) },
      c.disabled ? t('admin.enable') : t('admin.disable')),
      c.target === 'url' ? h('button', { class: 'btn btn-small', type: 'button', 'data-testid': 'command-secret',
        onclick: () => act(async () => {
          if (!(await ctx.confirmDialog(t('integrations.new_secret_confirm', { name: c.name })))) return;
          const res = await api.post(`/commands/${enc(c.id)}/secret`);
          clear(shown);
          shown.append(onceBox(t('integrations.secret_once', { name: c.name }), res.secret, { testid: 'command-secret-value' }));
        }) }, t('integrations.new_secret')) : null,
      h('button', { class: 'btn btn-small btn-danger', type: 'button', 'data-testid': 'delete-command',
        onclick: () => act(async () => {
          if (!(await ctx.confirmDialog(t('integrations.delete_command_confirm', { name: c.name }),
            { confirmLabel: t('integrations.delete'), danger: true }))) return;
          await api.del(`/commands/${enc(c.id)}`);
        }) }, t('integrations.delete'))));

  let seq = 0;
  const load = async () => {
    const my = ++seq;
    try {
      const [res, botsRes] = await Promise.all([api.get('/commands'), api.get('/bots').catch(() => ({ bots: [] }))]);
      if (my !== seq) return;
      const bots = new Map((botsRes.bots || []).map((b) => [b.user.id, b.user.display_name || b.user.username]));
      const chosen = botSelect.value;
      clear(botSelect);
      botSelect.append(h('option', { value: '' }, t('integrations.choose_bot')));
      for (const b of botsRes.bots || []) {
        if (!b.user.disabled) botSelect.append(h('option', { value: b.user.id, selected: b.user.id === chosen }, `@${b.user.username}`));
      }
      clear(tableBody);
      for (const c of res.commands || []) tableBody.append(row(c, bots));
      if (!(res.commands || []).length) {
        tableBody.append(h('tr', {}, h('td', { colspan: '5', class: 'empty-list' }, t('integrations.no_commands'))));
      }
    } catch (err) {
      toast(errorText(err), 'error');
    }
  };
  append(box, form, shown,
    h('div', { class: 'card-box' }, h('h3', {}, t('integrations.commands')),
      h('div', { class: 'table-wrap' }, h('table', { class: 'table', 'data-testid': 'commands-table' },
        h('thead', {}, h('tr', {}, h('th', {}, t('integrations.command_name')), h('th', {}, t('integrations.target')),
          h('th', {}, t('integrations.description')), h('th', {}, t('admin.status')), h('th', {}, ''))),
        tableBody))));
  load();
}

function renderHooks(box, ctx) {
  const { api, toast, errorText } = ctx;
  const tableBody = h('tbody', {});
  const shown = h('div', {});
  const formError = h('div', { class: 'form-error', role: 'alert' });
  const convSelect = h('select', { name: 'conversation_id', required: true, 'aria-label': t('integrations.conversation'),
    'data-testid': 'hook-conversation' });
  let names = new Map();

  const form = h('form', { class: 'inline-form card-box', 'data-testid': 'create-hook-form', onsubmit: async (e) => {
    e.preventDefault();
    formError.textContent = '';
    clear(shown);
    const name = form.elements.name.value.trim();
    if (!convSelect.value || !name) return;
    try {
      const res = await api.post(`/conversations/${enc(convSelect.value)}/incoming-webhooks`, { name });
      toast(t('integrations.hook_created', { name }));
      shown.append(onceBox(t('integrations.url_once', { name }), res.incoming_webhook.url, { curl: true, testid: 'hook-url' }));
      form.reset();
      load();
    } catch (err) {
      formError.textContent = errorText(err);
    }
  } },
  h('h3', {}, t('integrations.new_hook')),
  h('div', { class: 'form-grid' },
    h('label', { class: 'field' }, h('span', {}, t('integrations.conversation')), convSelect),
    h('label', { class: 'field' }, h('span', {}, t('integrations.hook_name')),
      h('input', { name: 'name', required: true, maxlength: '80', placeholder: 'CI', autocomplete: 'off',
        'data-testid': 'hook-name' })),
    h('div', { class: 'field field-button' },
      h('button', { class: 'btn btn-primary', type: 'submit', 'data-testid': 'create-hook' }, t('admin.create')))),
  formError);

  const act = async (fn) => {
    try {
      await fn();
    } catch (err) {
      toast(errorText(err), 'error');
    }
    load();
  };
  const row = (w) => h('tr', { class: w.disabled ? 'disabled' : '', 'data-testid': 'hook-row' },
    h('td', {}, h('div', { class: 'card-title' }, bdi(w.name))),
    h('td', { 'data-label': t('integrations.conversation') }, bdi(names.get(w.conversation_id) || w.conversation_id)),
    h('td', { 'data-label': t('integrations.posts') }, String(w.posts),
      h('div', { class: 'card-sub' }, w.last_post_at ? fmtDateTime(w.last_post_at) : t('integrations.never'))),
    h('td', { 'data-label': t('admin.status') },
      h('span', { class: `status-pill ${w.disabled ? 'off' : 'on'}` }, w.disabled ? t('admin.disabled') : t('admin.active'))),
    h('td', { class: 'cell-actions' },
      h('button', { class: 'btn btn-small', type: 'button', 'data-testid': w.disabled ? 'enable-hook' : 'disable-hook',
        onclick: () => act(() => api.patch(`/incoming-webhooks/${enc(w.id)}`, { disabled: !w.disabled })) },
      w.disabled ? t('admin.enable') : t('admin.disable')),
      h('button', { class: 'btn btn-small', type: 'button', 'data-testid': 'rotate-hook', onclick: () => act(async () => {
        if (!(await ctx.confirmDialog(t('integrations.rotate_confirm', { name: w.name })))) return;
        const res = await api.post(`/incoming-webhooks/${enc(w.id)}/rotate`);
        clear(shown);
        shown.append(onceBox(t('integrations.url_once', { name: w.name }), res.incoming_webhook.url,
          { curl: true, testid: 'hook-url' }));
      }) }, t('integrations.rotate')),
      h('button', { class: 'btn btn-small btn-danger', type: 'button', 'data-testid': 'delete-hook',
        onclick: () => act(async () => {
          if (!(await ctx.confirmDialog(t('integrations.delete_hook_confirm', { name: w.name }),
            { confirmLabel: t('integrations.delete'), danger: true }))) return;
          await api.del(`/incoming-webhooks/${enc(w.id)}`);
        }) }, t('integrations.delete'))));

  let seq = 0;
  const load = async () => {
    const my = ++seq;
    try {
      const [res, mine, channels] = await Promise.all([
        api.get('/incoming-webhooks'),
        api.get('/conversations').catch(() => ({ conversations: [] })),
        api.get('/channels').catch(() => ({ conversations: [] })),
      ]);
      if (my !== seq) return;
      // One's own groups and every channel (an admin may add one to any of them).
      const options = new Map();
      for (const c of mine.conversations || []) if (c.kind === 'group') options.set(c.id, c.name || c.id);
      for (const c of channels.conversations || []) options.set(c.id, `#${c.name}`);
      names = options;
      const chosen = convSelect.value;
      clear(convSelect);
      convSelect.append(h('option', { value: '' }, t('integrations.choose_conversation')));
      for (const [id, name] of [...options].sort((a, b) => a[1].localeCompare(b[1]))) {
        convSelect.append(h('option', { value: id, selected: id === chosen }, name));
      }
      clear(tableBody);
      for (const w of res.incoming_webhooks || []) tableBody.append(row(w));
      if (!(res.incoming_webhooks || []).length) {
        tableBody.append(h('tr', {}, h('td', { colspan: '5', class: 'empty-list' }, t('integrations.no_hooks'))));
      }
    } catch (err) {
      toast(errorText(err), 'error');
    }
  };
  append(box, form, shown,
    h('div', { class: 'card-box' }, h('h3', {}, t('integrations.hooks')),
      h('div', { class: 'table-wrap' }, h('table', { class: 'table', 'data-testid': 'hooks-table' },
        h('thead', {}, h('tr', {}, h('th', {}, t('integrations.hook_name')), h('th', {}, t('integrations.conversation')),
          h('th', {}, t('integrations.posts')), h('th', {}, t('admin.status')), h('th', {}, ''))),
        tableBody))));
  load();
}
