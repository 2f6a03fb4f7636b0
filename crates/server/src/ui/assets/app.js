// The application: who is signed in, the navigation between pages, the keyboard.

import { whoami, login, logout, SIGNED_OUT, ApiError } from './api.js';
import { h, clear } from './dom.js';
import { SearchPage } from './search.js';

const PAGES = {
  '/': { title: 'Search', load: async () => SearchPage },
  '/actions': { title: 'Actions', load: async () => (await import('./actions.js')).ActionsPage },
  '/objects': { title: 'Objects', load: async () => (await import('./objects.js')).ObjectsPage },
  '/admin': { title: 'Administration', load: async () => (await import('./admin.js')).AdminPage, admin: true },
};

const app = document.getElementById('app');
let session = null;
let page = null;
let pagePath = null;

async function start() {
  try {
    session = await whoami();
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 401) {
      clear(app, h('p', { class: 'error', role: 'alert', text: `Cannot reach the server: ${e.message}` }));
      return;
    }
    session = null;
  }
  if (session) await show();
  else signIn();
}

function signIn(message) {
  if (page && page.destroy) page.destroy();
  page = null;
  pagePath = null;
  session = null;
  document.title = 'Sign in · Logbook';
  const username = h('input', { id: 'username', name: 'username', autocomplete: 'username', required: true });
  const password = h('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const error = h('p', { class: 'error', role: 'alert' });
  if (message) error.textContent = message;
  const button = h('button', { type: 'submit', class: 'primary', text: 'Sign in' });
  const form = h('form', {
    class: 'signin',
    'aria-label': 'Sign in',
    onsubmit: async (e) => {
      e.preventDefault();
      button.disabled = true;
      error.textContent = '';
      try {
        session = await login(username.value, password.value);
        await show();
      } catch (err) {
        error.textContent = err.status === 401 ? 'Wrong user name or password.' : err.message;
        button.disabled = false;
        password.select();
      }
    },
  },
  h('img', { src: document.querySelector('link[rel=icon]').href, alt: '', width: 40, height: 40 }),
  h('h1', { text: 'Logbook' }),
  h('label', { for: 'username', text: 'Username' }), username,
  h('label', { for: 'password', text: 'Password' }), password,
  button, error);
  clear(app, h('main', { class: 'signin-page' }, form));
  username.focus();
}

function nav() {
  const link = (path, text) => h('a', {
    href: path,
    'data-nav': '',
    'aria-current': pagePath === path ? 'page' : null,
    text,
  });
  return h('nav', { class: 'topbar', 'aria-label': 'Main' },
    h('a', { href: '/', class: 'brand', 'data-nav': '' },
      h('img', { src: document.querySelector('link[rel=icon]').href, alt: '', width: 22, height: 22 }), 'Logbook'),
    h('div', { class: 'nav-links' },
      link('/', 'Search'), link('/actions', 'Actions'), link('/objects', 'Objects'),
      session.role === 'admin' ? link('/admin', 'Admin') : null),
    h('div', { class: 'who' },
      h('span', { class: 'muted', text: `${session.user} · ${session.role} · ${session.domain}` }),
      h('button', {
        type: 'button',
        text: 'Sign out',
        onclick: async () => {
          try {
            await logout();
          } finally {
            history.pushState(null, '', '/');
            signIn();
          }
        },
      })));
}

async function show() {
  const path = PAGES[location.pathname] ? location.pathname : '/';
  const spec = PAGES[path];
  if (spec.admin && session.role !== 'admin') {
    history.replaceState(null, '', '/');
    return show();
  }
  if (page && pagePath === path && page.restore) {
    page.restore();
    return;
  }
  if (page && page.destroy) page.destroy();
  pagePath = path;
  document.title = `${spec.title} · Logbook`;
  const main = h('main', { class: `page page-${path === '/' ? 'search' : path.slice(1)}` });
  clear(app, nav(), main);
  const Page = await spec.load();
  page = new Page(main, session);
}

/** Same-origin links marked data-nav change the page without reloading it. */
document.addEventListener('click', (event) => {
  const a = event.target.closest('a[data-nav]');
  if (!a || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  const url = new URL(a.href);
  if (url.origin !== location.origin) return;
  event.preventDefault();
  history.pushState(null, '', url.pathname + url.search);
  if (session) show();
});

window.addEventListener('popstate', () => session && show());
window.addEventListener(SIGNED_OUT, () => {
  if (session) signIn('Your session has ended. Please sign in again.');
});

document.addEventListener('keydown', (event) => {
  const typing = event.target.closest('input, textarea, select, [contenteditable]');
  if (event.key === 'Escape') {
    const dialog = document.querySelector('dialog[open]');
    if (dialog) return;
    if (page && page.onKey && page.onKey(event)) event.preventDefault();
    return;
  }
  if (event.key === '/' && !typing && page && page.focusSearch) {
    event.preventDefault();
    page.focusSearch();
  }
});

start();
