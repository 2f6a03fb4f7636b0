// Administration (admins only; the API refuses everyone else anyway): users (add,
// disable, change role) and API tokens (create, shown once; revoke).

import { get, post, patch, del } from './api.js';
import { h, clear, timeCell, copy } from './dom.js';

const ROLES = ['admin', 'auditor', 'user', 'writer'];

export class AdminPage {
  constructor(root, session) {
    this.root = root;
    this.session = session;
    this.usersBody = h('tbody');
    this.tokensBody = h('tbody');
    this.message = h('p', { class: 'error', role: 'alert' });
    this.secretEl = h('div', { class: 'secret', hidden: true, role: 'region', 'aria-label': 'New token' });
    clear(root,
      h('div', { class: 'admin' },
        h('h1', { class: 'page-title', text: 'Administration' }),
        this.message,
        h('section', { 'aria-label': 'Users' },
          h('h2', { text: 'Users' }),
          this.userForm(),
          h('table', { class: 'board' },
            h('thead', {}, h('tr', {}, ['Name', 'Role', 'Domain', 'Status', 'Created', ''].map((t) => h('th', { scope: 'col', text: t })))),
            this.usersBody)),
        h('section', { 'aria-label': 'Tokens' },
          h('h2', { text: 'API tokens' }),
          this.tokenForm(),
          this.secretEl,
          h('table', { class: 'board' },
            h('thead', {}, h('tr', {}, ['Id', 'User', 'Name', 'Created', 'Expires', 'State', ''].map((t) => h('th', { scope: 'col', text: t })))),
            this.tokensBody))));
    this.load();
  }

  async act(work) {
    this.message.textContent = '';
    try {
      await work();
      await this.load();
      return true;
    } catch (e) {
      this.message.textContent = e.message;
      return false;
    }
  }

  async load() {
    try {
      const [users, tokens] = await Promise.all([get('/logbook/v1/users'), get('/logbook/v1/tokens')]);
      this.users = users.users;
      clear(this.usersBody, users.users.map((u) => this.userRow(u)));
      clear(this.tokensBody, tokens.tokens.slice().reverse().map((t) => this.tokenRow(t)));
      clear(this.tokenUser, this.users.map((u) => h('option', { value: u.name, text: u.name, selected: u.name === this.session.user })));
    } catch (e) {
      this.message.textContent = e.message;
    }
  }

  userForm() {
    const name = h('input', { 'aria-label': 'New user name', placeholder: 'name', required: true, autocomplete: 'off' });
    const role = h('select', { 'aria-label': 'New user role' }, ROLES.map((r) => h('option', { value: r, text: r, selected: r === 'user' })));
    const domain = h('input', { 'aria-label': 'New user domain', placeholder: 'domain', value: 'default', required: true });
    const password = h('input', { 'aria-label': 'New user password', type: 'password', placeholder: 'password (8+ characters)', autocomplete: 'new-password' });
    return h('form', {
      class: 'inline-form',
      'aria-label': 'Add a user',
      onsubmit: async (e) => {
        e.preventDefault();
        const body = { name: name.value.trim(), role: role.value, domain: domain.value.trim() };
        if (password.value) body.password = password.value;
        if (await this.act(() => post('/logbook/v1/users', body))) {
          name.value = '';
          password.value = '';
        }
      },
    }, name, role, domain, password, h('button', { type: 'submit', class: 'primary', text: 'Add user' }));
  }

  userRow(user) {
    const role = h('select', {
      'aria-label': `Role of ${user.name}`,
      onchange: () => this.act(() => patch(`/logbook/v1/users/${encodeURIComponent(user.name)}`, { role: role.value })),
    }, ROLES.map((r) => h('option', { value: r, text: r, selected: r === user.role })));
    return h('tr', { 'data-user': user.name },
      h('td', { class: 'strong', text: user.name }),
      h('td', {}, role),
      h('td', { text: user.domain }),
      h('td', { text: user.disabled ? 'disabled' : 'active' }),
      h('td', {}, user.created ? timeCell(user.created) : ''),
      h('td', {}, h('button', {
        type: 'button',
        text: user.disabled ? 'Enable' : 'Disable',
        'aria-label': `${user.disabled ? 'Enable' : 'Disable'} ${user.name}`,
        onclick: () => this.act(() => patch(`/logbook/v1/users/${encodeURIComponent(user.name)}`, { disabled: !user.disabled })),
      })));
  }

  tokenForm() {
    const name = h('input', { 'aria-label': 'Token name', placeholder: 'name, e.g. ci', autocomplete: 'off' });
    this.tokenUser = h('select', { 'aria-label': 'Token user' });
    const expires = h('input', { 'aria-label': 'Expires', placeholder: 'expires, e.g. 30d (empty: never)' });
    return h('form', {
      class: 'inline-form',
      'aria-label': 'Create a token',
      onsubmit: async (e) => {
        e.preventDefault();
        // Before the account list has loaded, the token is the caller's own.
        const body = this.tokenUser.value ? { user: this.tokenUser.value } : {};
        if (name.value.trim()) body.name = name.value.trim();
        if (expires.value.trim()) body.expires = expires.value.trim();
        let created = null;
        if (await this.act(async () => {
          created = await post('/logbook/v1/tokens', body);
        })) {
          name.value = '';
          expires.value = '';
          this.showSecret(created);
        }
      },
    }, name, this.tokenUser, expires, h('button', { type: 'submit', class: 'primary', text: 'Create token' }));
  }

  showSecret(created) {
    const field = h('input', { class: 'mono', readonly: true, value: created.token, 'aria-label': 'Token secret', size: 60 });
    const status = h('span', { class: 'muted', role: 'status' });
    this.secretEl.hidden = false;
    clear(this.secretEl,
      h('p', {}, h('strong', { text: `Token ${created.id} for ${created.user}` }), ': copy it now, it is shown only once.'),
      field,
      h('button', { type: 'button', text: 'Copy', onclick: async () => {
        status.textContent = (await copy(created.token, field)) ? 'Copied' : 'Press Ctrl+C to copy';
      } }),
      h('button', { type: 'button', text: 'Done', onclick: () => {
        this.secretEl.hidden = true;
        clear(this.secretEl);
      } }),
      status);
    field.select();
  }

  tokenRow(token) {
    return h('tr', { 'data-token': token.id },
      h('td', { text: String(token.id) }),
      h('td', { text: token.user }),
      h('td', { text: token.name || '' }),
      h('td', {}, token.created ? timeCell(token.created) : ''),
      h('td', {}, token.expires ? timeCell(token.expires) : 'never'),
      h('td', { text: token.state }),
      h('td', {}, token.state === 'active' ? h('button', {
        type: 'button',
        class: 'danger',
        text: 'Revoke',
        'aria-label': `Revoke token ${token.id}`,
        onclick: () => this.act(() => del(`/logbook/v1/tokens/${token.id}`)),
      }) : null));
  }
}
