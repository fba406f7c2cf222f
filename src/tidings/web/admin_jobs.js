// Admin page "Jobs": the queues (jobs per state, the lag), the dead letters with their
// payload and last error (retry one, retry all, purge), and the server plugins.
// REST: GET /admin/jobs/stats, GET /admin/jobs?state=dead, POST /admin/jobs/{id}/retry,
// POST /admin/jobs/retry-dead, POST /admin/jobs/purge, GET /admin/plugins.
import { h, append, clear } from './dom.js';
import { t } from './i18n.js';

const STATES = ['pending', 'queued', 'running', 'done', 'dead'];
const DEAD_PAGE = 50;

function seconds(value) {
  if (value == null) return '—';
  if (value < 60) return t('jobs.seconds', { n: value.toFixed(value < 10 ? 1 : 0) });
  if (value < 3600) return t('jobs.minutes', { n: Math.round(value / 60) });
  return t('jobs.hours', { n: (value / 3600).toFixed(1) });
}

function table(testid, head, rows, empty) {
  const tbody = h('tbody', {}, rows);
  if (!rows.length) tbody.append(h('tr', {}, h('td', { colspan: String(head.length), class: 'empty-list' }, empty)));
  return h('div', { class: 'table-wrap' }, h('table', { class: 'table', 'data-testid': testid },
    h('thead', {}, h('tr', {}, head.map((x) => h('th', {}, x)))), tbody));
}

export function renderJobs(body, ctx) {
  const { api, toast, errorText } = ctx;
  const queues = h('div', { class: 'card-box', 'data-testid': 'job-queues' });
  const dead = h('div', { class: 'card-box', 'data-testid': 'dead-letters' });
  const plugins = h('div', { class: 'card-box', 'data-testid': 'plugins' });

  const act = async (call, done) => {
    try {
      const res = await call();
      toast(done(res));
    } catch (err) {
      toast(errorText(err), 'error');
    }
    load();
  };

  const renderQueues = (stats) => {
    clear(queues);
    const rows = Object.entries(stats.queues || {}).sort(([a], [b]) => a.localeCompare(b)).map(([name, counts]) => {
      const waiting = (counts.pending || 0) + (counts.queued || 0);
      return h('tr', { 'data-testid': 'queue-row', dataset: { queue: name } },
        h('td', {}, name),
        h('td', { 'data-label': t('jobs.depth'), 'data-testid': 'queue-depth' }, String(waiting)),
        STATES.map((s) => h('td', { 'data-label': t(`jobs.state.${s}`) }, String(counts[s] || 0))));
    });
    const lags = Object.entries(stats.consumer_lag || {}).sort(([a], [b]) => a.localeCompare(b));
    const broker = Object.entries(stats.broker || {});
    append(queues,
      h('div', { class: 'toolbar' }, h('h3', {}, t('jobs.queues')),
        h('button', { class: 'btn btn-small', type: 'button', 'data-testid': 'jobs-refresh', onclick: load }, t('jobs.refresh'))),
      h('p', { class: 'card-sub', 'data-testid': 'jobs-lag' },
        t('jobs.lag', { lag: seconds(stats.oldest_waiting_seconds) }), ' · ',
        t('jobs.dead_count', { n: stats.dead || 0 })),
      table('queues-table', [t('jobs.queue'), t('jobs.depth'), ...STATES.map((s) => t(`jobs.state.${s}`))], rows, t('jobs.no_jobs')),
      lags.length ? h('div', {}, h('h4', {}, t('jobs.consumers')),
        table('consumers-table', [t('jobs.consumer'), t('jobs.behind')],
          lags.map(([name, behind]) => h('tr', {}, h('td', {}, name), h('td', {}, String(behind)))), '')) : null,
      broker.length ? h('div', {}, h('h4', {}, t('jobs.broker')),
        table('broker-table', [t('jobs.queue'), t('jobs.messages')],
          broker.map(([name, n]) => h('tr', {}, h('td', {}, name), h('td', {}, String(n)))), '')) : null);
  };

  const renderDead = (jobs) => {
    clear(dead);
    const rows = jobs.map((job) => h('tr', { 'data-testid': 'dead-row', dataset: { jobId: job.id } },
      h('td', {}, h('div', { class: 'card-title' }, job.kind), h('div', { class: 'card-sub' }, job.id)),
      h('td', { 'data-label': t('jobs.attempts') }, `${job.attempts} / ${job.max_attempts}`),
      h('td', { 'data-label': t('jobs.last_error') }, h('code', { class: 'job-error', 'data-testid': 'dead-error' }, job.last_error || '')),
      h('td', { 'data-label': t('jobs.payload') }, h('details', {}, h('summary', {}, t('jobs.show_payload')),
        h('pre', { class: 'job-payload', 'data-testid': 'dead-payload' }, JSON.stringify(job.payload, null, 2)))),
      h('td', { 'data-label': t('jobs.failed_at') }, job.finished_at ? new Date(job.finished_at).toLocaleString() : ''),
      h('td', { class: 'cell-actions' }, h('button', { class: 'btn btn-small', type: 'button', 'data-testid': 'dead-retry',
        onclick: () => act(() => api.post(`/admin/jobs/${encodeURIComponent(job.id)}/retry`), () => t('jobs.retried_one')) },
      t('jobs.retry')))));
    append(dead,
      h('div', { class: 'toolbar' }, h('h3', {}, t('jobs.dead_letters')),
        h('div', { class: 'toolbar-actions' },
          h('button', { class: 'btn btn-small', type: 'button', 'data-testid': 'dead-retry-all', disabled: !jobs.length,
            onclick: () => act(() => api.post('/admin/jobs/retry-dead', {}), (res) => t('jobs.retried', { n: res.retried })) },
          t('jobs.retry_all')),
          h('button', { class: 'btn btn-small btn-danger', type: 'button', 'data-testid': 'dead-purge', disabled: !jobs.length,
            onclick: async () => {
              if (!(await ctx.confirmDialog(t('jobs.purge_confirm'), { confirmLabel: t('jobs.purge'), danger: true }))) return;
              act(() => api.post('/admin/jobs/purge', { states: ['dead'] }), (res) => t('jobs.purged', { n: res.purged }));
            } }, t('jobs.purge')))),
      table('dead-table', [t('jobs.job'), t('jobs.attempts'), t('jobs.last_error'), t('jobs.payload'), t('jobs.failed_at'), ''],
        rows, t('jobs.no_dead')),
      jobs.length >= DEAD_PAGE ? h('p', { class: 'card-sub' }, t('jobs.newest_only', { n: DEAD_PAGE })) : null);
  };

  const renderPlugins = (res) => {
    clear(plugins);
    const rows = (res.plugins || []).map((p) => {
      const b = p.before_message || {};
      const a = p.after_event || {};
      return h('tr', { 'data-testid': 'plugin-row', dataset: { plugin: p.name } },
        h('td', {}, h('div', { class: 'card-title' }, p.name), h('div', { class: 'card-sub' }, p.source)),
        h('td', { 'data-label': t('plugins.hooks') }, (p.hooks || []).join(', ')),
        h('td', { 'data-label': t('plugins.on_failure') }, p.fail_closed ? t('plugins.fail_closed') : t('plugins.fail_open')),
        h('td', { 'data-label': t('plugins.before_message') }, (p.hooks || []).includes('before_message')
          ? t('plugins.before_counts', { calls: b.calls, refused: b.refused, replaced: b.replaced, errors: b.errors, timeouts: b.timeouts }) : '—'),
        h('td', { 'data-label': t('plugins.after_event') }, (p.hooks || []).includes('after_event')
          ? t('plugins.after_counts', { runs: a.runs, failures: a.failures }) : '—'));
    });
    append(plugins, h('h3', {}, t('plugins.title')),
      h('p', { class: 'card-sub' }, t('plugins.time_limit', { ms: Math.round((res.timeout_seconds || 0) * 1000) })),
      table('plugins-table', [t('plugins.name'), t('plugins.hooks'), t('plugins.on_failure'), t('plugins.before_message'),
        t('plugins.after_event')], rows, t('plugins.none')));
  };

  let seq = 0;
  async function load() {
    const my = ++seq;
    try {
      const [stats, deadJobs, loaded] = await Promise.all([
        api.get('/admin/jobs/stats'),
        api.get('/admin/jobs', { state: 'dead', limit: DEAD_PAGE }),
        api.get('/admin/plugins'),
      ]);
      if (my !== seq) return;
      renderQueues(stats);
      renderDead(deadJobs.jobs || []);
      renderPlugins(loaded);
    } catch (err) {
      toast(errorText(err), 'error');
    }
  }
  append(body, queues, dead, plugins);
  load();
}
