// The page's shell: log in, the header (bucket, navigation, who is logged in) and the hash router.
// Routes: #/files?bucket=B&prefix=P, #/admin/<view>?bucket=B. The hash never holds a secret.

import { api, ApiError, session } from './api.js';
import { h, mount, notice } from './dom.js';
import { loginView } from './views/login.js';
import { filesView } from './views/files.js';
import { ADMIN_VIEWS } from './views/admin.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');

const state = { me: null, buckets: [], cleanup: null, path: '/files', bucket: null, seq: 0 };

export function go(path, params = {}) {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) search.set(k, v);
  const text = search.toString();
  const hash = `#${path}${text ? `?${text}` : ''}`;
  if (window.location.hash === hash) route();
  else window.location.hash = hash;
}

function parseHash() {
  const raw = window.location.hash.startsWith('#/') ? window.location.hash.slice(1) : '/files';
  const [path, query] = raw.split('?', 2);
  return { path, params: new URLSearchParams(query || '') };
}

function currentBucket(params) {
  const names = state.buckets.map((b) => b.name);
  const wanted = params.get('bucket');
  if (wanted && names.includes(wanted)) return wanted;
  const stored = sessionStorage.getItem('mediagate.bucket');
  if (stored && names.includes(stored)) return stored;
  return names[0] || null;
}

function link(label, path, active, params) {
  const search = new URLSearchParams(params).toString();
  return h('a', { href: `#${path}${search ? `?${search}` : ''}`, 'aria-current': active ? 'page' : false }, label);
}

function renderHeader(path, bucket) {
  const params = bucket ? { bucket } : {};
  const items = [['Files', '/files'], ...ADMIN_VIEWS.map((v) => [v.title, `/admin/${v.id}`])];
  mount(nav, h('ul', {}, items.map(([label, p]) => h('li', {}, link(label, p, path === p, params)))));
  const select = h(
    'select',
    {
      id: 'bucket-select',
      onchange: (e) => {
        sessionStorage.setItem('mediagate.bucket', e.target.value);
        go(path, { bucket: e.target.value });
      },
    },
    state.buckets.map((b) => h('option', { value: b.name, selected: b.name === bucket }, b.name)),
  );
  const scopes = state.me.scopes.join(', ');
  mount(
    who,
    state.buckets.length ? h('label', { class: 'bucket-pick' }, h('span', {}, 'Bucket'), select) : null,
    h('span', { class: 'key-id', title: `scopes: ${scopes}` }, state.me.key_id),
    h('button', { type: 'button', class: 'link', id: 'logout', onclick: logout }, 'Log out'),
  );
}

async function route() {
  if (!state.me) return;
  if (state.cleanup) {
    state.cleanup();
    state.cleanup = null;
  }
  const { path, params } = parseHash();
  const bucket = currentBucket(params);
  if (bucket) sessionStorage.setItem('mediagate.bucket', bucket);
  Object.assign(state, { path, bucket });
  renderHeader(path, bucket);
  const ctx = {
    bucket,
    me: state.me,
    get buckets() {
      return state.buckets; // fresh after reloadBuckets()
    },
    params,
    go,
    reloadBuckets,
  };
  const view = path === '/files' ? filesView : ADMIN_VIEWS.find((v) => `/admin/${v.id}` === path)?.render;
  if (!view) {
    mount(main, notice('There is no such view here.', 'error'));
    return;
  }
  const seq = ++state.seq;
  try {
    const cleanup = (await view(main, ctx)) || null;
    if (seq === state.seq) state.cleanup = cleanup;
    else if (cleanup) cleanup(); // another route began meanwhile: this view is already gone
  } catch (exc) {
    if (seq !== state.seq) return;
    if (exc instanceof ApiError && exc.status === 401) {
      logout();
      return;
    }
    mount(main, notice(exc.message, 'error'));
  }
}

async function reloadBuckets() {
  state.buckets = (await api.buckets()).buckets;
  if (state.me && nav.childElementCount) renderHeader(state.path, state.bucket);
}

async function start() {
  if (!session.key()) {
    mount(nav);
    mount(who);
    loginView(main, { onLogin: start });
    return;
  }
  try {
    state.me = await api.me();
    await reloadBuckets();
  } catch (exc) {
    session.clear();
    state.me = null;
    mount(nav);
    mount(who);
    loginView(main, { onLogin: start, error: exc.message });
    return;
  }
  route();
}

function logout() {
  if (state.cleanup) state.cleanup();
  state.cleanup = null;
  session.clear();
  sessionStorage.removeItem('mediagate.bucket');
  state.me = null;
  start();
}

document.getElementById('skip').addEventListener('click', (e) => {
  e.preventDefault();
  main.focus();
});
window.addEventListener('hashchange', () => {
  if (window.location.hash.startsWith('#/')) route();
});
start();
