// Files: browse a bucket's folders with thumbnails, upload into the current folder (Uppy's
// Dashboard and tus plugin: drag and drop, picker, several files, per-file progress, resumable;
// or paste an image), preview, copy the URL or a snippet, delete.

import { api } from '../api.js';
import { h, mount, notice } from '../dom.js';
import { bytes, kindOf, when } from '../format.js';
import { BlobUrls, show } from '../media.js';
import { openPreview } from './preview.js';
import { SessionUrlStorage, UploadTokens } from '../resume.js';
import { Uppy, Dashboard, Tus } from '../../vendor/uppy-6.0.1/uppy.min.mjs';

const THUMB = '/fw/256';
const CHUNK = 8 * 1024 * 1024;

function folderOf(prefix) {
  return prefix ? prefix.replace(/\/?$/, '/') : '';
}

/** The hash of the files view at `prefix` (a real link: opens in a new tab too). */
export function filesHref(bucket, prefix = '') {
  const params = new URLSearchParams({ bucket });
  if (prefix) params.set('prefix', prefix);
  return `#/files?${params}`;
}

function breadcrumbs(bucket, prefix) {
  const parts = prefix.split('/').filter(Boolean);
  const crumbs = [h('li', {}, parts.length ? h('a', { href: filesHref(bucket) }, bucket) : h('span', { 'aria-current': 'page' }, bucket))];
  parts.forEach((part, i) => {
    const last = i === parts.length - 1;
    const target = `${parts.slice(0, i + 1).join('/')}/`;
    crumbs.push(h('li', {}, last ? h('span', { 'aria-current': 'page' }, part) : h('a', { href: filesHref(bucket, target) }, part)));
  });
  return h('nav', { 'aria-label': 'Folder' }, h('ol', { class: 'breadcrumbs' }, crumbs));
}

function thumbnail(ctx, obj, blobs) {
  const kind = kindOf(obj.mime);
  const badge = h('span', { class: `badge kind-${kind}`, 'aria-hidden': 'true' }, kind === 'file' ? (obj.key.split('.').pop() || 'file').slice(0, 5) : kind);
  if (kind !== 'image') return h('div', { class: 'thumb' }, badge);
  const img = h('img', { alt: '', loading: 'lazy', decoding: 'async' });
  img.addEventListener('error', () => img.replaceWith(badge));
  if (!show(img, ctx, obj, blobs, { spec: THUMB, thumbnail: true })) return h('div', { class: 'thumb' }, badge);
  return h('div', { class: 'thumb' }, img);
}

function makeUploader(target, ctx, prefix, onDone) {
  // One upload token per file, asked for once; kept in sessionStorage (resume.js) with the tus
  // URL so that the same file added again after a reload continues where it stopped.
  const kept = new UploadTokens(ctx.bucket, prefix);
  const asked = new Map();
  async function tokenFor(file) {
    const stored = kept.get(file.id);
    if (stored) return stored;
    if (!asked.has(file.id)) {
      // the console's user holds the bucket's key, whose uploads replace: so do these tokens'
      const request = { ttl: 3600, max_uses: 1, prefix, max_size: file.size || undefined, overwrite: true };
      asked.set(file.id, api.uploadToken(ctx.bucket, request).then((t) => t.token));
    }
    try {
      const token = await asked.get(file.id);
      kept.set(file.id, token);
      return token;
    } finally {
      asked.delete(file.id);
    }
  }
  const forget = (file) => {
    if (file) kept.forget(file.id);
  };
  const uppy = new Uppy({ autoProceed: true, id: 'mediagate' })
    .use(Dashboard, {
      inline: true,
      target,
      height: 260,
      width: '100%',
      proudlyDisplayPoweredByUppy: false,
      theme: 'auto', // follows the system's light or dark, like the page
      showProgressDetails: true,
      hideProgressDetails: false,
      note: `Into ${ctx.bucket}/${prefix}. Resumable: an interrupted upload continues where it stopped, even after a reload (add the same file again).`,
    })
    .use(Tus, {
      endpoint: `/v1/tus/${encodeURIComponent(ctx.bucket)}/`,
      chunkSize: CHUNK,
      retryDelays: [0, 1000, 3000, 5000, 10000],
      removeFingerprintOnSuccess: true,
      urlStorage: new SessionUrlStorage(ctx.bucket, prefix),
      allowedMetaFields: ['name', 'type'],
      async onBeforeRequest(req, file) {
        req.setHeader('Authorization', `Bearer ${await tokenFor(file)}`);
      },
    });
  uppy.on('upload-success', (file) => {
    forget(file);
    onDone();
  });
  uppy.on('file-removed', forget);
  uppy.on('upload-error', (file, error, response) => {
    // a refused token (used up, expired, revoked) is of no more use: the next try asks anew
    const status = response?.status ?? error?.originalResponse?.getStatus?.();
    if (status === 401 || status === 403) forget(file);
  });
  uppy.on('complete', () => onDone());
  return uppy;
}

/** Pasting an image anywhere on the page (outside a text field) adds it to the upload. */
function pasteHandler(uppy) {
  return (event) => {
    const target = event.target;
    if (target.closest && (target.closest('.uppy-Dashboard') || target.closest('input, textarea'))) return;
    const files = [...(event.clipboardData?.files || [])];
    if (!files.length) return;
    event.preventDefault();
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
    files.forEach((file, i) => {
      const ext = (file.type.split('/')[1] || 'bin').replace(/[^a-z0-9]/gi, '');
      const name = `pasted-${stamp}${files.length > 1 ? `-${i + 1}` : ''}.${ext}`;
      uppy.addFile({ name, type: file.type, data: file, source: 'clipboard' });
    });
  };
}

export async function filesView(main, ctx) {
  const { bucket } = ctx;
  if (!bucket) {
    mount(main, notice('This key reaches no bucket yet.', 'info'));
    return null;
  }
  const prefix = folderOf(ctx.params.get('prefix') || '');
  const listing = h('section', { class: 'listing', 'aria-labelledby': 'listing-title', 'aria-busy': 'true' });
  const status = h('div', { 'aria-live': 'polite', class: 'status-line' });
  const dashboard = h('div', { id: 'uploader', class: 'uploader' });
  const canWrite = ctx.me.scopes.includes('write');
  const uploadPanel = h(
    'section',
    { class: 'upload-panel', 'aria-labelledby': 'upload-title' },
    h('h2', { id: 'upload-title' }, 'Upload'),
    canWrite
      ? [h('p', { class: 'muted' }, 'Drop files here, choose them, or paste an image (Ctrl+V / ⌘V) anywhere on this page.'), dashboard]
      : notice('This key has no write scope: it can browse but not upload.'),
  );

  const refresh = () => load();
  mount(
    main,
    h(
      'div',
      { class: 'files' },
      h('div', { class: 'files-head' }, breadcrumbs(bucket, prefix), h('button', { type: 'button', id: 'refresh', onclick: refresh }, 'Refresh')),
      uploadPanel,
      status,
      listing,
    ),
  );

  let uppy = null;
  let onPaste = null;
  if (canWrite) {
    let pending = null;
    uppy = makeUploader(dashboard, ctx, prefix, () => {
      clearTimeout(pending);
      pending = setTimeout(refresh, 300);
    });
    onPaste = pasteHandler(uppy);
    document.addEventListener('paste', onPaste);
  }

  let objects = [];
  let folders = [];
  let cursor = null;
  const blobs = new BlobUrls();

  function render() {
    blobs.release();
    const files = objects;
    const cards = [
      ...folders.map((folder) => folder.slice(prefix.length).replace(/\/$/, '')).map((name) =>
        h(
          'li',
          { class: 'card folder' },
          h(
            'a',
            { href: filesHref(bucket, `${prefix}${name}/`), class: 'folder-link' },
            h('div', { class: 'thumb' }, h('span', { class: 'badge kind-folder', 'aria-hidden': 'true' }, 'folder')),
            h('span', { class: 'name' }, `${name}/`),
          ),
        ),
      ),
      ...files.map((obj) => {
        const name = obj.key.slice(prefix.length);
        return h(
          'li',
          { class: 'card file', dataset: { key: obj.key } },
          h(
            'button',
            { type: 'button', class: 'open', 'aria-label': `Preview ${name}`, onclick: () => openPreview(ctx, obj, { onDeleted: refresh }) },
            thumbnail(ctx, obj, blobs),
          ),
          h('span', { class: 'name', title: obj.key }, name),
          h('span', { class: 'meta muted' }, `${bytes(obj.size)} · ${when(obj.created_at)}`),
        );
      }),
    ];
    const counted = `${folders.length} folder(s), ${files.length} file(s)${cursor ? ' so far' : ''}`;
    mount(
      listing,
      h('div', { class: 'listing-head' }, h('h2', { id: 'listing-title' }, 'Files'), h('span', { class: 'muted' }, counted)),
      cards.length ? h('ul', { class: 'grid' }, cards) : h('p', { class: 'muted empty' }, 'This folder is empty.'),
      cursor ? h('button', { type: 'button', class: 'more', onclick: () => load(true) }, 'Load more') : null,
    );
    listing.setAttribute('aria-busy', 'false');
    mount(status);
  }

  async function load(more = false) {
    listing.setAttribute('aria-busy', 'true');
    try {
      const page = await api.folder(bucket, prefix, more ? cursor : undefined);
      objects = more ? [...objects, ...page.objects] : page.objects;
      folders = more ? [...folders, ...page.folders] : page.folders;
      cursor = page.next_cursor;
      render();
    } catch (exc) {
      mount(status, notice(exc.message, 'error'));
      listing.setAttribute('aria-busy', 'false');
    }
  }
  await load();

  return () => {
    blobs.release();
    if (onPaste) document.removeEventListener('paste', onPaste);
    if (uppy) uppy.destroy();
  };
}
