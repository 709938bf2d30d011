// Log in with an API key: a password field; the key is checked with GET /v1/me and then kept in
// sessionStorage (see api.js), never in a URL.

import { api, session } from '../api.js';
import { h, mount, notice } from '../dom.js';

export function loginView(main, { onLogin, error }) {
  const input = h('input', {
    id: 'api-key',
    name: 'api-key',
    type: 'password',
    autocomplete: 'off',
    spellcheck: 'false',
    required: true,
    'aria-describedby': 'api-key-help',
  });
  const status = h('div', { 'aria-live': 'polite' }, error ? notice(error, 'error') : null);
  const button = h('button', { type: 'submit', class: 'primary' }, 'Log in');
  const form = h(
    'form',
    {
      class: 'login card',
      onsubmit: async (e) => {
        e.preventDefault();
        const secret = input.value.trim();
        if (!secret) return;
        button.disabled = true;
        mount(status, notice('Checking the key…'));
        try {
          await api.me(secret);
          session.save(secret);
          input.value = '';
          onLogin();
        } catch (exc) {
          mount(status, notice(exc.status === 401 ? 'That key was not accepted (unknown or revoked).' : exc.message, 'error'));
          button.disabled = false;
          input.focus();
        }
      },
    },
    h('h1', {}, 'Log in'),
    h('label', { for: 'api-key' }, 'API key'),
    input,
    h(
      'p',
      { id: 'api-key-help', class: 'muted' },
      'Create one on the server with ',
      h('code', {}, 'mediagate key create --bucket NAME'),
      '. It stays in this tab only and is forgotten when the tab closes.',
    ),
    button,
    status,
  );
  mount(main, form);
  input.focus();
}
