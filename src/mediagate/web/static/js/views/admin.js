// Admin views: buckets and their settings, keys (create, revoke), recent uploads, the task queue,
// notification deliveries (attempts, redeliver) and usage per bucket. What a key may not do,
// the API refuses; the view shows the API's message.

import { api } from '../api.js';
import { h, mount, notice, table } from '../dom.js';
import { bytes, kindOf, when } from '../format.js';
import { BlobUrls, show } from '../media.js';
import { openPreview } from './preview.js';

function page(main, title, ...body) {
  const status = h('div', { 'aria-live': 'polite', class: 'status-line' });
  const content = h('div', { class: 'admin-body' }, body);
  mount(main, h('section', { class: 'admin', 'aria-labelledby': 'view-title' }, h('h1', { id: 'view-title' }, title), status, content));
  return { status, content };
}

function fail(status, exc) {
  mount(status, notice(exc.message, 'error'));
}

const code = (text) => h('code', {}, text ?? '—');

// -- buckets ------------------------------------------------------------------------------------

async function bucketsView(main, ctx) {
  const { status, content } = page(main, 'Buckets');
  const list = h('div', {});
  const settings = h('section', { class: 'settings', 'aria-labelledby': 'settings-title' });
  const load = async (name) => {
    const [{ buckets }, bucket] = await Promise.all([api.buckets(), name ? api.bucket(name) : null]);
    const rows = buckets.map((b) => [
      h('button', { type: 'button', class: 'link', onclick: () => load(b.name).catch((exc) => fail(status, exc)) }, b.name),
      when(b.created_at),
      Object.keys(b.settings || {}).join(', ') || 'defaults',
    ]);
    mount(list, table('Buckets', ['Bucket', 'Created', 'Settings'], rows, 'No bucket.'));
    if (bucket) showSettings(bucket);
  };
  const showSettings = (bucket) => {
    const { name } = bucket;
    const editor = h('textarea', { id: 'settings-json', rows: 10, spellcheck: 'false', 'aria-describedby': 'settings-help' });
    editor.value = JSON.stringify(bucket.settings, null, 2);
    const save = async (e) => {
      e.preventDefault();
      let parsed;
      try {
        parsed = JSON.parse(editor.value);
      } catch (exc) {
        mount(status, notice(`Not JSON: ${exc.message}`, 'error'));
        return;
      }
      try {
        await api.updateBucket(name, parsed);
        await ctx.reloadBuckets(); // the files view reads `public` from here
        await load(name);
        mount(status, notice(`Saved the settings of ${name}.`));
      } catch (exc) {
        fail(status, exc);
      }
    };
    const entries = Object.entries(bucket.settings || {});
    mount(
      settings,
      h('h2', { id: 'settings-title' }, `Settings of ${name}`),
      table(`Settings of ${name}`, ['Setting', 'Value'], entries.map(([k, v]) => [code(k), code(JSON.stringify(v))]), 'Defaults only: nothing set.'),
      h(
        'form',
        { class: 'settings-form', onsubmit: save },
        h('label', { for: 'settings-json' }, 'Edit as JSON'),
        h('p', { id: 'settings-help', class: 'muted' }, 'Merged into the current settings; a value of null returns a setting to its default. Needs the admin scope.'),
        editor,
        h('button', { type: 'submit', class: 'primary' }, 'Save settings'),
      ),
    );
  };
  const serverAdmin = ctx.me.bucket === null && ctx.me.scopes.includes('admin');
  mount(content, serverAdmin ? createBucketForm(ctx, status, load) : null, list, settings);
  await load(ctx.bucket);
}

/** A server-wide admin key may create buckets; the dialects' credentials are shown once. */
function createBucketForm(ctx, status, reload) {
  const input = h('input', { id: 'new-bucket', type: 'text', required: true, minlength: 3, maxlength: 63, pattern: '[a-z0-9][a-z0-9\\-]*[a-z0-9]', 'aria-describedby': 'new-bucket-help' });
  const created = h('div', { 'aria-live': 'polite' });
  const submit = async (e) => {
    e.preventDefault();
    try {
      const bucket = await api.createBucket(input.value.trim());
      const creds = Object.entries(bucket.credentials).map(([k, v]) => [code(k), h('input', { type: 'text', readonly: true, value: v, class: 'snippet', 'aria-label': k })]);
      mount(
        created,
        h('div', { class: 'notice success', role: 'status' }, h('p', {}, `Created ${bucket.name}. Its dialect credentials are shown once: copy them now.`), table(`Credentials of ${bucket.name}`, ['Credential', 'Value'], creds)),
      );
      input.value = '';
      await ctx.reloadBuckets();
      await reload(bucket.name);
    } catch (exc) {
      fail(status, exc);
    }
  };
  return h(
    'div',
    {},
    h(
      'form',
      { class: 'inline-form', onsubmit: submit },
      h('fieldset', {}, h('legend', {}, 'New bucket'), h('label', { for: 'new-bucket' }, 'Name'), input, h('button', { type: 'submit', class: 'primary' }, 'Create bucket'), h('span', { id: 'new-bucket-help', class: 'muted' }, 'lowercase letters, digits and -')),
    ),
    created,
  );
}

// -- keys ---------------------------------------------------------------------------------------

async function keysView(main, ctx) {
  const { status, content } = page(main, 'API keys');
  const list = h('div', {});
  const created = h('div', { 'aria-live': 'polite' });
  const serverWide = ctx.me.bucket === null;
  const load = async () => {
    const { keys } = await api.keys(serverWide ? undefined : ctx.bucket);
    const rows = keys.map((k) => [
      code(k.key_id),
      k.bucket ?? 'all buckets',
      k.scopes.join(', '),
      k.label || '—',
      when(k.created_at),
      k.revoked_at
        ? `revoked ${when(k.revoked_at)}`
        : h('button', { type: 'button', class: 'danger small', dataset: { revoke: k.key_id }, onclick: () => revoke(k) }, 'Revoke'),
    ]);
    mount(list, table('API keys', ['Key', 'Bucket', 'Scopes', 'Label', 'Created', ''], rows, 'No key.'));
  };
  const revoke = async (k) => {
    if (!window.confirm(`Revoke ${k.key_id}? Apps using it stop working at once.`)) return;
    try {
      await api.revokeKey(k.key_id);
      mount(status, notice(`Revoked ${k.key_id}.`));
      await load();
    } catch (exc) {
      fail(status, exc);
    }
  };
  const scopeBoxes = ['read', 'write', 'admin'].map((s) =>
    h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'scope', value: s, checked: s !== 'admin' }), s),
  );
  const label = h('input', { id: 'key-label', type: 'text', maxlength: 100 });
  const form = h(
    'form',
    {
      class: 'inline-form',
      onsubmit: async (e) => {
        e.preventDefault();
        const scopes = scopeBoxes.map((l) => l.querySelector('input')).filter((i) => i.checked).map((i) => i.value);
        try {
          const key = await api.createKey({ bucket: ctx.bucket, scopes, label: label.value });
          const secret = h('input', { type: 'text', readonly: true, value: key.secret, id: 'new-secret', class: 'snippet', 'aria-label': 'The new key' });
          mount(
            created,
            h(
              'div',
              { class: 'notice success', role: 'status' },
              h('p', {}, `Created ${key.key_id} for ${key.bucket}. Copy its secret now: it is shown once.`),
              secret,
            ),
          );
          label.value = '';
          await load();
        } catch (exc) {
          fail(status, exc);
        }
      },
    },
    h('fieldset', {}, h('legend', {}, `New key for ${ctx.bucket}`), scopeBoxes, h('label', { for: 'key-label' }, 'Label'), label, h('button', { type: 'submit', class: 'primary' }, 'Create key')),
  );
  mount(content, ctx.bucket ? form : null, created, list);
  await load();
}

// -- recent uploads -----------------------------------------------------------------------------

async function recentView(main, ctx) {
  const { content } = page(main, `Recent uploads in ${ctx.bucket}`);
  const objects = [];
  let cursor;
  for (let i = 0; i < 5; i += 1) {
    const pageOf = await api.objects(ctx.bucket, '', cursor);
    objects.push(...pageOf.objects);
    cursor = pageOf.next_cursor;
    if (!cursor) break;
  }
  objects.sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
  const blobs = new BlobUrls();
  const mini = (obj) => {
    const img = h('img', { class: 'mini', alt: '', loading: 'lazy' });
    return kindOf(obj.mime) === 'image' && show(img, ctx, obj, blobs, { spec: '/fw/64', thumbnail: true }) ? img : kindOf(obj.mime);
  };
  const rows = objects.slice(0, 50).map((obj) => [
    mini(obj),
    h('button', { type: 'button', class: 'link', onclick: () => openPreview(ctx, obj, { onDeleted: () => ctx.go('/admin/recent', { bucket: ctx.bucket }) }) }, obj.key),
    bytes(obj.size),
    obj.mime || '—',
    when(obj.created_at),
  ]);
  mount(
    content,
    table('Recent uploads', ['', 'Key', 'Size', 'Type', 'Uploaded'], rows, 'Nothing uploaded yet.'),
    cursor ? h('p', { class: 'muted' }, `Newest among the first ${objects.length} objects of the bucket.`) : null,
  );
  return () => blobs.release();
}

// -- tasks --------------------------------------------------------------------------------------

function statusFilter(id, options, value, onChange) {
  return h(
    'label',
    { class: 'filter' },
    'Status ',
    h('select', { id, onchange: (e) => onChange(e.target.value) }, ['', ...options].map((o) => h('option', { value: o, selected: o === value }, o || 'any'))),
  );
}

async function tasksView(main, ctx) {
  const { status, content } = page(main, `Task queue of ${ctx.bucket}`);
  const list = h('div', {});
  let wanted = '';
  const load = async () => {
    try {
      const { tasks } = await api.tasks(ctx.bucket, wanted);
      const rows = tasks.map((t) => [
        code(t.id),
        t.kind,
        h('span', { class: 'url' }, t.source),
        h('span', { class: `pill status-${t.status}` }, t.status),
        `${t.attempts} / ${t.max_attempts}`,
        t.reason || '—',
        when(t.created_at),
        t.status === 'failed' ? h('button', { type: 'button', class: 'small', dataset: { retry: t.id }, onclick: () => retry(t) }, 'Retry') : when(t.finished_at),
      ]);
      mount(list, table('Tasks', ['Task', 'Kind', 'Source', 'Status', 'Attempts', 'Reason', 'Created', 'Finished'], rows, 'No task.'));
    } catch (exc) {
      fail(status, exc);
    }
  };
  const retry = async (t) => {
    try {
      await api.retryTask(t.id);
      mount(status, notice(`Task ${t.id} queued again.`));
      await load();
    } catch (exc) {
      fail(status, exc);
    }
  };
  mount(
    content,
    statusFilter('task-status', ['pending', 'running', 'done', 'failed'], '', (v) => {
      wanted = v;
      load();
    }),
    list,
  );
  await load();
}

// -- deliveries ---------------------------------------------------------------------------------

async function deliveriesView(main, ctx) {
  const { status, content } = page(main, `Notification deliveries of ${ctx.bucket}`);
  const list = h('div', {});
  let wanted = '';
  const load = async () => {
    try {
      const { deliveries } = await api.deliveries(ctx.bucket, wanted);
      const rows = deliveries.map((d) => [
        code(String(d.id)),
        h('span', { class: `pill status-${d.status}` }, d.status),
        h('span', { class: 'url' }, `${d.method} ${d.url}`),
        String(d.attempts),
        d.last_status_code ? String(d.last_status_code) : '—',
        d.last_error || '—',
        d.delivered_at ? `delivered ${when(d.delivered_at)}` : `next ${when(d.next_attempt_at)}`,
        h('button', { type: 'button', class: 'small', dataset: { redeliver: String(d.id) }, onclick: () => redeliver(d) }, 'Redeliver'),
      ]);
      mount(list, table('Deliveries', ['Delivery', 'Status', 'Callback', 'Attempts', 'Last HTTP', 'Last error', 'When', ''], rows, 'No notification sent yet.'));
    } catch (exc) {
      fail(status, exc);
    }
  };
  const redeliver = async (d) => {
    try {
      await api.redeliver(d.id);
      mount(status, notice(`Delivery ${d.id} queued again.`));
      await load();
    } catch (exc) {
      fail(status, exc);
    }
  };
  mount(
    content,
    statusFilter('delivery-status', ['pending', 'delivered', 'failed'], '', (v) => {
      wanted = v;
      load();
    }),
    list,
  );
  await load();
}

// -- usage --------------------------------------------------------------------------------------

async function usageView(main) {
  const { content } = page(main, 'Usage per bucket');
  const { buckets } = await api.usage();
  const most = Math.max(1, ...buckets.map((u) => u.bytes));
  const rows = buckets.map((u) => [
    u.bucket,
    String(u.objects),
    bytes(u.bytes),
    h('meter', { min: 0, max: most, value: u.bytes, 'aria-label': `${u.bucket}: share of the largest bucket` }),
  ]);
  mount(content, table('Usage', ['Bucket', 'Objects', 'Stored', ''], rows, 'No bucket.'));
}

const needsBucket = (render) => async (main, ctx) => {
  if (!ctx.bucket) {
    mount(main, notice('Choose a bucket first.'));
    return null;
  }
  return render(main, ctx);
};

export const ADMIN_VIEWS = [
  { id: 'buckets', title: 'Buckets', render: bucketsView },
  { id: 'keys', title: 'Keys', render: keysView },
  { id: 'recent', title: 'Recent uploads', render: needsBucket(recentView) },
  { id: 'tasks', title: 'Tasks', render: needsBucket(tasksView) },
  { id: 'deliveries', title: 'Deliveries', render: needsBucket(deliveriesView) },
  { id: 'usage', title: 'Usage', render: usageView },
];
