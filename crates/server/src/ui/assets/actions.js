// The actions board: tracked operations with their state, object, user, start and
// duration, kept current from the native stream of action events; one action's log
// lines, live while it runs; cancel and retry where the lifecycle and role allow.

import { get, post, query } from './api.js';
import { h, clear, timeCell, stateBadge, duration, millis, localTime, utcTime, throttle } from './dom.js';
import { Follower, highWater } from './live.js';

const STATES = ['Pending', 'In progress', 'Canceling', 'Canceled', 'Success', 'Failed'];
const FINAL = new Set(['Canceled', 'Success', 'Failed']);
const PAGE = 100;
const LOG_TAIL = 5000;

export class ActionsPage {
  constructor(root, session) {
    this.root = root;
    this.session = session;
    this.readUrl();
    this.build();
    this.load();
    this.follow();
    this.ticker = setInterval(() => this.tick(), 1000);
    if (this.selected) this.openAction(this.selected);
  }

  destroy() {
    clearInterval(this.ticker);
    if (this.follower) this.follower.stop();
    this.closeLog();
  }

  readUrl() {
    const p = new URLSearchParams(location.search);
    this.states = (p.get('state') || '').split(',').filter((s) => STATES.includes(s));
    this.selected = p.get('action') || '';
  }

  writeUrl(push) {
    const p = new URLSearchParams();
    if (this.states.length) p.set('state', this.states.join(','));
    if (this.selected) p.set('action', this.selected);
    const url = `/actions${p.toString() ? `?${p}` : ''}`;
    if (push) history.pushState(null, '', url);
    else history.replaceState(null, '', url);
  }

  restore() {
    this.readUrl();
    this.syncToggles();
    this.load();
    if (this.selected) this.openAction(this.selected);
    else this.closeDetail(false);
  }

  build() {
    this.toggles = STATES.map((state) => h('button', {
      type: 'button',
      class: 'toggle',
      'aria-pressed': 'false',
      text: state,
      onclick: () => {
        this.states = this.states.includes(state) ? this.states.filter((s) => s !== state) : [...this.states, state];
        this.writeUrl(true);
        this.syncToggles();
        this.load();
      },
    }));
    this.summary = h('div', { class: 'summary', role: 'status' });
    this.body = h('tbody');
    this.older = h('button', { type: 'button', class: 'more', text: 'Load older', hidden: true, onclick: () => this.loadOlder() });
    this.detail = h('aside', { class: 'panel', hidden: true, 'aria-label': 'Action' });
    const table = h('table', { class: 'board', 'aria-label': 'Actions' },
      h('thead', {}, h('tr', {}, ['State', 'Action', 'Object', 'User', 'Started', 'Duration'].map((t) => h('th', { scope: 'col', text: t })))),
      this.body);
    clear(this.root,
      h('section', { class: 'search-bar' },
        h('div', { class: 'filter-row' },
          h('h1', { class: 'page-title', text: 'Actions' }),
          h('div', { class: 'levels', role: 'group', 'aria-label': 'States' }, this.toggles),
          this.summary)),
      h('div', { class: 'workspace' },
        h('div', { class: 'results-scroll' }, table, this.older),
        this.detail));
    this.syncToggles();
  }

  syncToggles() {
    STATES.forEach((s, i) => this.toggles[i].setAttribute('aria-pressed', String(this.states.includes(s))));
  }

  params(extra) {
    const p = { ...extra };
    if (this.states.length) p.state = this.states.join(',');
    return p;
  }

  /** The newest page: the API lists oldest first, so read the total, then the end. */
  async load() {
    const run = (this.run = (this.run || 0) + 1);
    try {
      const head = await get(`/logbook/v1/actions${query(this.params({ limit: 1 }))}`);
      const offset = Math.max(0, head.total - PAGE);
      const page = await get(`/logbook/v1/actions${query(this.params({ limit: PAGE, offset }))}`);
      if (run !== this.run) return;
      this.offset = offset;
      this.total = page.total;
      this.actions = page.actions.slice().reverse();
      this.render();
    } catch (e) {
      clear(this.summary, h('span', { class: 'error', role: 'alert', text: e.message }));
    }
  }

  async loadOlder() {
    if (!this.offset) return;
    const offset = Math.max(0, this.offset - PAGE);
    const page = await get(`/logbook/v1/actions${query(this.params({ limit: this.offset - offset, offset }))}`);
    this.offset = offset;
    this.actions.push(...page.actions.slice().reverse());
    this.render();
  }

  render() {
    this.summary.textContent = `${this.total} ${this.total === 1 ? 'action' : 'actions'}`;
    clear(this.body, this.actions.map((a) => this.row(a)));
    if (!this.actions.length) this.body.append(h('tr', {}, h('td', { colspan: 6, class: 'empty', text: 'No actions.' })));
    this.older.hidden = !this.offset;
  }

  row(action) {
    return h('tr', {
      class: `row${action.uuid === this.selected ? ' selected' : ''}`,
      tabindex: '0',
      'data-uuid': action.uuid,
      'aria-label': `${action.action} ${action.state}`,
      onclick: () => this.select(action.uuid),
      onkeydown: (e) => e.key === 'Enter' && this.select(action.uuid),
    },
    h('td', {}, stateBadge(action.state)),
    h('td', { class: 'strong', text: action.action }),
    h('td', { class: 'mono', text: action.object || '' }),
    h('td', { text: action.user || '' }),
    h('td', {}, timeCell(action.start_date)),
    h('td', { class: 'duration', 'data-start': action.start_date, 'data-end': action.end_date || '', text: this.took(action) }));
  }

  took(action) {
    const end = action.end_date ? millis(action.end_date) : Date.now();
    const text = duration(end - millis(action.start_date));
    return action.end_date ? text : `${text} (running)`;
  }

  tick() {
    for (const cell of this.root.querySelectorAll('td.duration[data-end=""], dd.duration[data-end=""]')) {
      cell.textContent = `${duration(Date.now() - millis(cell.dataset.start))} (running)`;
    }
  }

  /** Action changes are event records: follow them and refresh what they touch. */
  async follow() {
    const refresh = throttle(() => {
      this.load();
      if (this.selected && this.current) this.refreshDetail();
    }, 1000);
    this.follower = new Follower({
      params: new URLSearchParams({ kind: 'event', category: 'action' }),
      after: await highWater(),
      onRecords: refresh,
    }).start();
  }

  select(uuid) {
    this.selected = uuid;
    this.writeUrl(true);
    for (const tr of this.body.querySelectorAll('tr.selected')) tr.classList.remove('selected');
    const tr = this.body.querySelector(`tr[data-uuid="${CSS.escape(uuid)}"]`);
    if (tr) tr.classList.add('selected');
    this.openAction(uuid);
  }

  async openAction(uuid) {
    this.detail.hidden = false;
    document.body.classList.add('panel-open');
    try {
      const action = await get(`/logbook/v1/actions/${encodeURIComponent(uuid)}`);
      if (this.selected !== uuid) return;
      this.current = action;
      this.renderDetail(action);
      this.openLog(action);
    } catch (e) {
      clear(this.detail, this.header('Action'), h('p', { class: 'error', role: 'alert', text: e.status === 404 ? 'No such action (or not yours to see).' : e.message }));
    }
  }

  async refreshDetail() {
    const uuid = this.selected;
    try {
      const action = await get(`/logbook/v1/actions/${encodeURIComponent(uuid)}`);
      if (this.selected !== uuid) return;
      this.current = action;
      this.renderFields(action);
    } catch {
      // Shown on the next change.
    }
  }

  closeDetail(notify = true) {
    this.detail.hidden = true;
    document.body.classList.remove('panel-open');
    this.closeLog();
    this.selected = '';
    this.current = null;
    for (const tr of this.body.querySelectorAll('tr.selected')) tr.classList.remove('selected');
    if (notify) this.writeUrl(true);
  }

  header(title) {
    return h('header', { class: 'panel-head' },
      h('h2', { text: title }),
      h('button', { type: 'button', class: 'icon', 'aria-label': 'Close', title: 'Close (Esc)', text: '×', onclick: () => this.closeDetail() }));
  }

  renderDetail(action) {
    this.fieldsEl = h('div', { class: 'action-fields' });
    this.logStatus = h('span', { class: 'muted log-status', role: 'status' });
    this.logEl = h('ol', { class: 'log', 'aria-label': 'Log' });
    clear(this.detail,
      this.header(action.action),
      h('div', { class: 'panel-body' },
        this.fieldsEl,
        h('section', { class: 'log-section' }, h('h3', {}, 'Log ', this.logStatus), this.logEl)));
    this.renderFields(action);
  }

  renderFields(action) {
    const mayRequest = this.session.role !== 'auditor';
    const cancelable = mayRequest && action.can_be_canceled && (action.state === 'Pending' || action.state === 'In progress');
    const retryable = mayRequest && action.can_be_retried && FINAL.has(action.state);
    const message = h('p', { class: 'error', role: 'alert' });
    const request = async (verb) => {
      message.textContent = '';
      try {
        const answer = await post(`/logbook/v1/actions/${encodeURIComponent(action.uuid)}/${verb}`);
        if (verb === 'retry') this.select(answer.uuid);
        else {
          this.current = answer;
          this.renderFields(answer);
        }
        this.load();
      } catch (e) {
        message.textContent = e.message;
      }
    };
    const item = (term, value) => [h('dt', { text: term }), h('dd', {}, value)];
    clear(this.fieldsEl,
      h('div', { class: 'action-buttons' },
        stateBadge(action.state),
        cancelable ? h('button', { type: 'button', class: 'danger', text: 'Cancel', onclick: () => request('cancel') }) : null,
        retryable ? h('button', { type: 'button', text: 'Retry', onclick: () => request('retry') }) : null),
      message,
      h('dl', { class: 'facts' },
        item('uuid', h('span', { class: 'mono', text: action.uuid })),
        item('object', action.object ? h('a', { href: `/objects?uri=${encodeURIComponent(action.object)}`, 'data-nav': '', class: 'mono', text: action.object }) : '—'),
        item('user', action.user || '—'),
        item('started', h('span', { title: utcTime(action.start_date), text: localTime(action.start_date) })),
        item('ended', action.end_date ? h('span', { title: utcTime(action.end_date), text: localTime(action.end_date) }) : '—'),
        [h('dt', { text: 'duration' }), h('dd', { class: 'duration', 'data-start': action.start_date, 'data-end': action.end_date || '', text: this.took(action) })],
        action.method || action.path ? item('request', `${action.method || ''} ${action.path || ''}`.trim()) : null,
        action.ip ? item('ip', action.ip) : null,
        action.retry_of ? item('retry of', h('a', { href: `/actions?action=${encodeURIComponent(action.retry_of)}`, 'data-nav': '', class: 'mono', text: action.retry_of })) : null,
        item('domain', action.domain_id || '—'),
        h('dt', { text: 'events' }), h('dd', {}, h('a', { href: `/?kind=event&category=action&object_id=${encodeURIComponent(action.uuid)}&range=all`, 'data-nav': '', text: 'its event records' }))));
  }

  /** The Docker Cloud log socket: the tail, then each line until the action ends. */
  openLog(action) {
    this.closeLog();
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const socket = new WebSocket(`${scheme}://${location.host}/api/audit/v1/action/${encodeURIComponent(action.uuid)}/logs/?tail=${LOG_TAIL}&follow=true`);
    this.socket = socket;
    this.logStatus.textContent = FINAL.has(action.state) ? '' : '(live)';
    this.logStatus.dataset.state = 'connecting';
    socket.addEventListener('open', () => {
      this.logStatus.dataset.state = FINAL.has(action.state) ? 'replaying' : 'live';
    });
    socket.addEventListener('message', (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame.type !== 'log') return;
      const atBottom = this.logEl.scrollHeight - this.logEl.scrollTop - this.logEl.clientHeight < 8;
      const ts = new Date(frame.timestamp * 1000).toISOString();
      this.logEl.append(h('li', {}, h('time', { class: 'time', title: utcTime(ts), text: localTime(ts, false) }), h('span', { class: 'line', text: frame.log })));
      if (atBottom) this.logEl.scrollTop = this.logEl.scrollHeight;
    });
    socket.addEventListener('close', (event) => {
      if (this.socket !== socket) return;
      this.logStatus.dataset.state = 'closed';
      this.logStatus.textContent = event.code === 1000 ? '(ended)' : '(connection lost; reopen the action to resume)';
      if (!this.logEl.children.length) this.logEl.append(h('li', { class: 'muted', text: 'No log lines.' }));
    });
  }

  closeLog() {
    if (this.socket) {
      const socket = this.socket;
      this.socket = null;
      socket.close();
    }
  }

  onKey(event) {
    if (event.key === 'Escape' && !this.detail.hidden) {
      this.closeDetail();
      return true;
    }
    return false;
  }
}
