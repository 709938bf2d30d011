// Formatting for people: sizes, dates, and the snippets a user copies.

export function bytes(n) {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = Number(n);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

export function when(iso) {
  if (!iso) return '—';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
}

export function absolute(path) {
  return new URL(path, window.location.origin).href;
}

const escapeHtml = (text) =>
  String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

/** What "copy" offers for an object: its URL, a Markdown and an HTML snippet (all escaped). */
export function snippets(url, name, mime) {
  const alt = name.replace(/[[\]\\]/g, '\\$&');
  const markdownUrl = url.replace(/[()\s]/g, (c) => encodeURIComponent(c));
  const isImage = (mime || '').startsWith('image/');
  const isVideo = (mime || '').startsWith('video/');
  let html = `<a href="${escapeHtml(url)}">${escapeHtml(name)}</a>`;
  if (isImage) html = `<img src="${escapeHtml(url)}" alt="${escapeHtml(name)}">`;
  if (isVideo) html = `<video src="${escapeHtml(url)}" controls></video>`;
  return [
    { label: 'URL', text: url },
    { label: 'Markdown', text: `${isImage ? '!' : ''}[${alt}](${markdownUrl})` },
    { label: 'HTML', text: html },
  ];
}

export function kindOf(mime) {
  if (!mime) return 'file';
  if (mime.startsWith('image/')) return 'image';
  if (mime.startsWith('video/')) return 'video';
  if (mime.startsWith('audio/')) return 'audio';
  return 'file';
}
