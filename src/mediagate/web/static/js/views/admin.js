// Admin views: buckets (create, settings, delete), keys (create, also server-wide; revoke), recent
// uploads (newest first from the server), upload tokens (list, revoke), the task queue,
// notification deliveries (each attempt, redeliver) and usage per bucket. What a key may not do,
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
    else mount(settings);
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
      ctx.me.scopes.includes('admin') ? deleteBucketForm(ctx, status, name) : null,
    );
  };
  const serverAdmin = ctx.me.bucket === null && ctx.me.scopes.includes('admin');
  mount(content, serverAdmin ? createBucketForm(ctx, status, load) : null, list, settings);
  const deleted = ctx.params.get('deleted');
  if (deleted) mount(status, notice(`Deleted the bucket ${deleted}.`));
  await load(ctx.bucket);
}

/** Deleting a bucket: the user types its name to confirm; a bucket with objects needs the box
 * ticked as well (``force``), or the API refuses with its own message. */
function deleteBucketForm(ctx, status, name) {
  const typed = h('input', { id: 'delete-confirm', type: 'text', autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'delete-help' });
  const force = h('input', { id: 'delete-force', type: 'checkbox' });
  const button = h('button', { type: 'submit', class: 'danger', disabled: true }, `Delete ${name}`);
  typed.addEventListener('input', () => {
    button.disabled = typed.value !== name;
  });
  const submit = async (e) => {
    e.preventDefault();
    if (typed.value !== name) return;
    try {
      await api.deleteBucket(name, force.checked);
      if (sessionStorage.getItem('mediagate.bucket') === name) sessionStorage.removeItem('mediagate.bucket');
      await ctx.reloadBuckets();
      ctx.go('/admin/buckets', { deleted: name }); // a fresh view, on another bucket

    } catch (exc) {
      fail(status, exc);
    }
  };
  return h(
    'form',
    { class: 'danger-zone', onsubmit: submit, 'aria-labelledby': 'delete-title' },
    h('h3', { id: 'delete-title' }, `Delete ${name}`),
    h('p', { id: 'delete-help', class: 'muted' }, `This cannot be undone. Type ${name} to confirm.`),
    h('label', { for: 'delete-confirm' }, 'Confirm deletion'),
    typed,
    h('label', { class: 'check', for: 'delete-force' }, force, 'Also delete every object in it'),
    button,
  );
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
  // A server-wide admin key may also make server-wide keys (every bucket, and creating buckets).
  const serverAdmin = serverWide && ctx.me.scopes.includes('admin');
  const reach = serverAdmin
    ? h(
        'select',
        { id: 'key-bucket' },
        ctx.bucket ? h('option', { value: ctx.bucket }, `only ${ctx.bucket}`) : null,
        h('option', { value: '' }, 'all buckets (server-wide)'),
      )
    : null;
  const form = h(
    'form',
    {
      class: 'inline-form',
      onsubmit: async (e) => {
        e.preventDefault();
        const scopes = scopeBoxes.map((l) => l.querySelector('input')).filter((i) => i.checked).map((i) => i.value);
        try {
          const bucket = reach ? reach.value || null : ctx.bucket;
          const key = await api.createKey({ bucket, scopes, label: label.value });
          const secret = h('input', { type: 'text', readonly: true, value: key.secret, id: 'new-secret', class: 'snippet', 'aria-label': 'The new key' });
          mount(
            created,
            h(
              'div',
              { class: 'notice success', role: 'status' },
              h('p', {}, `Created ${key.key_id} for ${key.bucket ?? 'all buckets'}. Copy its secret now: it is shown once.`),
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
    h(
      'fieldset',
      {},
      h('legend', {}, reach ? 'New key' : `New key for ${ctx.bucket}`),
      reach ? [h('label', { for: 'key-bucket' }, 'Reaches'), reach] : null,
      scopeBoxes,
      h('label', { for: 'key-label' }, 'Label'),
      label,
      h('button', { type: 'submit', class: 'primary' }, 'Create key'),
    ),
  );
  mount(content, ctx.bucket || reach ? form : null, created, list);
  await load();
}

// -- recent uploads -----------------------------------------------------------------------------

async function recentView(main, ctx) {
  const { status, content } = page(main, `Recent uploads in ${ctx.bucket}`);
  const blobs = new BlobUrls();
  const list = h('div', {});
  const more = h('div', {});
  const rows = [];
  const mini = (obj) => {
    const img = h('img', { class: 'mini', alt: '', loading: 'lazy' });
    return kindOf(obj.mime) === 'image' && show(img, ctx, obj, blobs, { spec: '/fw/64', thumbnail: true }) ? img : kindOf(obj.mime);
  };
  const row = (obj) => [
    mini(obj),
    h('button', { type: 'button', class: 'link', onclick: () => openPreview(ctx, obj, { onDeleted: () => ctx.go('/admin/recent', { bucket: ctx.bucket }) }) }, obj.key),
    bytes(obj.size),
    obj.mime || '—',
    when(obj.created_at),
  ];
  // Newest first from the server (an index on upload time): page after page, as far as one wants.
  const load = async (cursor) => {
    try {
      const found = await api.recent(ctx.bucket, cursor);
      rows.push(...found.objects.map(row));
      mount(list, table('Recent uploads', ['', 'Key', 'Size', 'Type', 'Uploaded'], rows, 'Nothing uploaded yet.'));
      mount(more, found.next_cursor ? h('button', { type: 'button', class: 'more', onclick: () => load(found.next_cursor) }, 'Older uploads') : null);
    } catch (exc) {
      fail(status, exc);
    }
  };
  mount(content, list, more);
  await load();
  return () => blobs.release();
}

// -- upload tokens ------------------------------------------------------------------------------

function tokenState(t) {
  if (t.revoked_at) return ['revoked', `revoked ${when(t.revoked_at)}`];
  if (t.uses >= t.max_uses) return ['used', 'used up'];
  if (new Date(t.expires_at).getTime() <= Date.now()) return ['expired', 'expired'];
  return ['active', 'active'];
}

async function tokensView(main, ctx) {
  const { status, content } = page(main, `Upload tokens of ${ctx.bucket}`);
  const list = h('div', {});
  let showAll = false;
  const load = async () => {
    try {
      const { upload_tokens: tokens } = await api.uploadTokens(ctx.bucket);
      const shown = tokens
        .filter((t) => showAll || tokenState(t)[0] === 'active')
        .sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
      const rows = shown.map((t) => {
        const [state, label] = tokenState(t);
        return [
          code(t.token_id),
          t.key ? code(t.key) : h('span', {}, t.prefix ? code(`${t.prefix}…`) : 'any key'),
          `${t.uses} / ${t.max_uses}`,
          t.max_size ? bytes(t.max_size) : 'no limit',
          t.content_types.length ? t.content_types.join(', ') : 'any',
          code(t.key_id),
          when(t.expires_at),
          state === 'revoked'
            ? label
            : h('span', { class: 'token-state' }, h('span', { class: `pill status-${state}` }, label), ' ', h('button', { type: 'button', class: 'danger small', dataset: { revokeToken: t.token_id }, 'aria-label': `Revoke ${t.token_id}`, onclick: () => revoke(t) }, 'Revoke')),
        ];
      });
      const empty = showAll ? 'No upload token issued for this bucket.' : 'No active upload token.';
      mount(list, table('Upload tokens', ['Token', 'Key or prefix', 'Uses', 'Max size', 'Types', 'Issued by', 'Expires', 'State'], rows, empty));
    } catch (exc) {
      fail(status, exc);
    }
  };
  const revoke = async (t) => {
    if (!window.confirm(`Revoke ${t.token_id}? An upload using it is refused from now on.`)) return;
    try {
      await api.revokeUploadToken(ctx.bucket, t.token_id);
      mount(status, notice(`Revoked ${t.token_id}.`));
      await load();
    } catch (exc) {
      fail(status, exc);
    }
  };
  const everything = h('input', {
    type: 'checkbox',
    id: 'tokens-all',
    onchange: (e) => {
      showAll = e.target.checked;
      load();
    },
  });
  mount(
    content,
    h('p', { class: 'muted' }, 'Short-lived tokens that let a browser or a phone upload without a key (this page issues one per file). Their secrets are never shown again.'),
    h('label', { class: 'check', for: 'tokens-all' }, everything, 'Show used up, expired and revoked tokens too'),
    list,
  );
  await load();
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
        h('button', { type: 'button', class: 'link', 'aria-expanded': 'false', 'aria-controls': 'attempts', dataset: { attempts: String(d.id) }, 'aria-label': `Attempts of delivery ${d.id}: ${d.attempts}`, onclick: (e) => showAttempts(d, e.currentTarget) }, String(d.attempts)),
        d.last_status_code ? String(d.last_status_code) : '—',
        d.last_error || '—',
        d.delivered_at ? `delivered ${when(d.delivered_at)}` : `next ${when(d.next_attempt_at)}`,
        h('button', { type: 'button', class: 'small', dataset: { redeliver: String(d.id) }, onclick: () => redeliver(d) }, 'Redeliver'),
      ]);
      mount(list, table('Deliveries', ['Delivery', 'Status', 'Callback', 'Attempts', 'Last HTTP', 'Last error', 'When', ''], rows, 'No notification sent yet.'));
      mount(attempts);
    } catch (exc) {
      fail(status, exc);
    }
  };
  // Each try of one delivery (the server keeps the newest 20): when, the HTTP answer or the error.
  const attempts = h('section', { id: 'attempts', class: 'attempts', 'aria-live': 'polite' });
  const showAttempts = async (d, button) => {
    try {
      const { history } = await api.delivery(d.id);
      list.querySelectorAll('button[aria-expanded="true"]').forEach((b) => b.setAttribute('aria-expanded', 'false'));
      button.setAttribute('aria-expanded', 'true');
      const rows = (history || []).map((a) => [
        String(a.attempt),
        when(a.at),
        h('span', { class: `pill status-${a.ok ? 'delivered' : 'failed'}` }, a.ok ? 'ok' : 'failed'),
        a.status_code ? String(a.status_code) : '—',
        a.error || '—',
      ]);
      mount(
        attempts,
        h('h2', { id: 'attempts-title' }, `Attempts of delivery ${d.id}`),
        h('p', { class: 'muted' }, `${d.method} ${d.url}, newest first`),
        table(`Attempts of delivery ${d.id}`, ['Attempt', 'At', 'Outcome', 'HTTP', 'Error'], rows, 'Not tried yet.'),
      );
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
    attempts,
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
  { id: 'tokens', title: 'Upload tokens', render: needsBucket(tokensView) },
  { id: 'tasks', title: 'Tasks', render: needsBucket(tasksView) },
  { id: 'deliveries', title: 'Deliveries', render: needsBucket(deliveriesView) },
  { id: 'usage', title: 'Usage', render: usageView },
];
