// The preview dialog of one object: the image or the video itself, its facts, the URL and
// snippets to copy, open and delete.

import { api, publicUrl } from '../api.js';
import { h, mount, notice } from '../dom.js';
import { absolute, bytes, kindOf, snippets, when } from '../format.js';
import { BlobUrls, isPrivate, show } from '../media.js';

async function copy(text, input, status) {
  try {
    await navigator.clipboard.writeText(text);
    mount(status, notice('Copied.'));
  } catch {
    input.select(); // no clipboard API (plain http on another host): leave it selected to copy by hand
    mount(status, notice('Selected: press Ctrl+C (⌘C) to copy.'));
  }
}

function media(ctx, obj, blobs) {
  const kind = kindOf(obj.mime);
  const name = obj.key.split('/').pop();
  let el = null;
  if (kind === 'image') el = h('img', { class: 'preview-media', alt: name });
  if (kind === 'video') el = h('video', { class: 'preview-media', controls: true, preload: 'metadata' });
  if (kind === 'audio') el = h('audio', { controls: true, preload: 'metadata' });
  if (!el) return h('p', { class: 'muted' }, 'No preview for this type; open or copy its URL below.');
  if (!show(el, ctx, obj, blobs)) return h('p', { class: 'muted' }, 'Too large to preview from a private bucket.');
  el.addEventListener('error', () => el.replaceWith(h('p', { class: 'notice error' }, 'This file could not be shown.')));
  return el;
}

export function openPreview(ctx, obj, { onDeleted }) {
  const dialog = document.getElementById('preview');
  const name = obj.key.split('/').pop();
  const url = absolute(publicUrl(ctx.bucket, obj.key));
  const status = h('div', { 'aria-live': 'polite', class: 'status-line' });
  const facts = [
    ['Key', obj.key],
    ['Size', bytes(obj.size)],
    ['Type', obj.mime || '—'],
    obj.width ? ['Dimensions', `${obj.width} × ${obj.height}`] : null,
    ['Uploaded', when(obj.created_at)],
    ['MD5', obj.md5 || '—'],
  ].filter(Boolean);
  const rows = snippets(url, name, obj.mime).map(({ label, text }) => {
    const input = h('input', { type: 'text', readonly: true, value: text, 'aria-label': `${label} of ${name}`, class: 'snippet' });
    return h(
      'div',
      { class: 'snippet-row' },
      h('span', { class: 'snippet-label' }, label),
      input,
      h('button', { type: 'button', dataset: { copy: label }, onclick: () => copy(text, input, status) }, `Copy ${label}`),
    );
  });
  const close = () => dialog.close();
  const remove = async () => {
    if (!window.confirm(`Delete ${obj.key}? This cannot be undone.`)) return;
    try {
      await api.deleteObject(ctx.bucket, obj.key);
      dialog.close();
      onDeleted();
    } catch (exc) {
      mount(status, notice(exc.message, 'error'));
    }
  };
  const canWrite = ctx.me.scopes.includes('write');
  const blobs = new BlobUrls();
  const closed = isPrivate(ctx);
  mount(
    dialog,
    h(
      'div',
      { class: 'preview' },
      h(
        'header',
        { class: 'preview-head' },
        h('h2', { id: 'preview-title' }, name),
        h('button', { type: 'button', class: 'close', 'aria-label': 'Close', onclick: close }, '×'),
      ),
      h('div', { class: 'preview-body' }, media(ctx, obj, blobs)),
      closed ? notice('This bucket is private: its URLs answer 403 to anyone without credentials.') : null,
      h('dl', { class: 'facts' }, facts.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
      h('div', { class: 'snippets' }, rows),
      h(
        'div',
        { class: 'actions' },
        closed ? null : h('a', { class: 'button', href: publicUrl(ctx.bucket, obj.key), target: '_blank', rel: 'noopener noreferrer' }, 'Open'),
        canWrite ? h('button', { type: 'button', class: 'danger', id: 'delete', onclick: remove }, 'Delete') : null,
      ),
      status,
    ),
  );
  dialog.addEventListener(
    'close',
    () => {
      mount(dialog); // stops a playing video
      blobs.release();
    },
    { once: true },
  );
  dialog.showModal();
}
