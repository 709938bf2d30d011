// Building DOM nodes without HTML strings: every text goes in as a text node, every attribute
// through setAttribute, so an object key (hostile by assumption) can never become markup.
// Nothing in the page parses markup from a string.

const SAFE_URL = /^(\/(?!\/)|#|\.\/|blob:|https?:)/i;

/**
 * h('a', {href: '/x', class: 'btn', onclick: fn}, 'text', childNode, [more, children])
 * Props: `class`, `on<event>` (listener), `dataset` (object), boolean `true`/`false` toggles the
 * attribute; `href`/`src` must be same-origin paths, `#…`, `blob:` or http(s) URLs.
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      el.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (name === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (name === 'value' && 'value' in el) {
      el.value = String(value);
    } else if ((name === 'href' || name === 'src') && !SAFE_URL.test(String(value))) {
      throw new Error(`refusing ${name}=${String(value).slice(0, 40)}`);
    } else {
      el.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** Replace all children of `el` with `children`. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A polite status message for screen readers and eyes (role=status or role=alert). */
export function notice(text, kind = 'info') {
  return h('p', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
}

/** A table from column titles and rows of cells (cells are nodes or text). */
export function table(caption, columns, rows, empty = 'Nothing here yet.') {
  if (!rows.length) return h('p', { class: 'muted empty' }, empty);
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      {},
      h('caption', { class: 'visually-hidden' }, caption),
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, rows.map((cells) => h('tr', {}, cells.map((c) => h('td', {}, c))))),
    ),
  );
}
