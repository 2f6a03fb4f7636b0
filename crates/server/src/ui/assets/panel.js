// One record in a side panel: every field, `data` as a collapsible tree, buttons
// that add "field = value" or "field != value" to the search, a permalink, and the
// records just before and after it from the same source and instance.

import { get } from './api.js';
import { h, clear, timeCell, levelBadge, jsonTree, copy, localTime, utcTime } from './dom.js';

// In the order a reader wants them; each filterable in the native API.
const FIELDS = [
  'kind', 'level', 'category', 'source', 'instance', 'logger', 'user', 'user_id',
  'domain_id', 'project_id', 'object_type', 'object_id', 'action', 'status',
  'response_code', 'request_id', 'parent_request_id',
];
const NOT_FILTERABLE = new Set(['response_code', 'parent_request_id']);
const CONTEXT = 10;

export class RecordPanel {
  constructor(el, { onFilter, onClose, onOpen }) {
    this.el = el;
    this.onFilter = onFilter;
    this.onClose = onClose;
    this.onOpen = onOpen;
    this.id = null;
  }

  isOpen() {
    return !this.el.hidden;
  }

  async open(id, known) {
    this.id = String(id);
    this.onOpen(this.id);
    this.el.hidden = false;
    document.body.classList.add('panel-open');
    for (const row of document.querySelectorAll('.results .row.selected')) row.classList.remove('selected');
    const row = document.querySelector(`.results .row[data-id="${CSS.escape(this.id)}"]`);
    if (row) row.classList.add('selected');
    if (known) this.render(known);
    else clear(this.el, this.header(`Record ${id}`), h('p', { class: 'muted', text: 'Loading…' }));
    try {
      const record = known || (await get(`/logbook/v1/records/${encodeURIComponent(id)}`));
      if (this.id !== String(id)) return;
      if (!known) this.render(record);
      this.loadContext(record);
    } catch (e) {
      if (this.id !== String(id)) return;
      clear(this.el, this.header(`Record ${id}`), h('p', { class: 'error', role: 'alert', text: e.status === 404 ? 'No such record (or not yours to see).' : e.message }));
    }
  }

  close(notify = true) {
    if (this.el.hidden) return;
    this.el.hidden = true;
    this.id = null;
    document.body.classList.remove('panel-open');
    for (const row of document.querySelectorAll('.results .row.selected')) row.classList.remove('selected');
    if (notify) this.onClose();
  }

  header(title) {
    return h('header', { class: 'panel-head' },
      h('h2', { text: title }),
      h('button', { type: 'button', class: 'icon', 'aria-label': 'Close', title: 'Close (Esc)', text: '×', onclick: () => this.close() }));
  }

  render(record) {
    const link = `${location.origin}/?record=${record.id}`;
    const linkInput = h('input', { class: 'permalink-text', readonly: true, value: link, 'aria-label': 'Permalink' });
    const copied = h('span', { class: 'muted', role: 'status' });
    const rows = [
      h('tr', {}, h('th', { text: 'id' }), h('td', { text: String(record.id) }), h('td')),
      h('tr', {}, h('th', { text: 'time' }), h('td', {}, timeCell(record.ts), h('div', { class: 'muted', text: utcTime(record.ts) })), h('td')),
    ];
    for (const field of FIELDS) {
      const value = record[field];
      if (value === undefined || value === null || value === '') continue;
      const text = String(value);
      const shown = field === 'level' ? levelBadge(text) : h('span', { class: 'value', text });
      const actions = NOT_FILTERABLE.has(field) ? h('td') : h('td', { class: 'filter-buttons' },
        h('button', { type: 'button', class: 'small', text: '=', title: `Add ${field} = ${text} to the search`, 'aria-label': `Filter ${field} = ${text}`, onclick: () => this.onFilter(field, '=', text) }),
        h('button', { type: 'button', class: 'small', text: '≠', title: `Add ${field} != ${text} to the search`, 'aria-label': `Exclude ${field} = ${text}`, onclick: () => this.onFilter(field, '!=', text) }));
      let cell = shown;
      if (field === 'object_id' && record.object_type) {
        cell = h('a', { href: `/objects?object=${encodeURIComponent(`${record.object_type}/${text}`)}`, 'data-nav': '', text });
      }
      rows.push(h('tr', { 'data-field': field }, h('th', { text: field }), h('td', {}, cell), actions));
    }
    this.contextEl = h('section', { class: 'context', 'aria-label': 'Context' }, h('h3', { text: 'Context' }), h('p', { class: 'muted', text: 'Loading…' }));
    clear(this.el,
      this.header(`Record ${record.id}`),
      h('div', { class: 'panel-body' },
        h('p', { class: 'message-full', text: record.message || '' }),
        h('table', { class: 'fields' }, h('tbody', {}, rows)),
        record.data ? h('section', { class: 'data' }, h('h3', { text: 'data' }), h('div', { class: 'json' }, jsonTree(record.data, 2))) : null,
        h('div', { class: 'permalink' },
          h('a', { href: link, text: 'Permalink', 'data-nav': '' }), linkInput,
          h('button', { type: 'button', class: 'small', text: 'Copy', onclick: async () => {
            copied.textContent = (await copy(link, linkInput)) ? 'Copied' : 'Press Ctrl+C to copy';
          } }), copied),
        this.contextEl));
  }

  async loadContext(record) {
    const el = this.contextEl;
    try {
      const answer = await get(`/logbook/v1/records/${record.id}/context?before=${CONTEXT}&after=${CONTEXT}`);
      if (!el.isConnected) return;
      const line = (r, current) => h('li', {
        class: `context-row${current ? ' current' : ''}`,
        'data-id': r.id,
        tabindex: current ? null : '0',
        onclick: current ? null : () => this.open(r.id, r),
        onkeydown: current ? null : (e) => e.key === 'Enter' && this.open(r.id, r),
      }, h('time', { class: 'time', title: `${localTime(r.ts)} local\n${utcTime(r.ts)}`, text: localTime(r.ts, false) }), levelBadge(r.level), h('span', { class: 'message', text: r.message || '' }));
      const by = answer.by.filter((f) => record[f]).map((f) => `${f} ${record[f]}`).join(', ');
      clear(el,
        h('h3', { text: 'Context' }),
        h('p', { class: 'muted', text: by ? `Same ${by}` : 'All records around it' }),
        h('ol', { class: 'context-list' },
          answer.before.map((r) => line(r, false)),
          line(answer.record, true),
          answer.after.map((r) => line(r, false))));
    } catch (e) {
      if (el.isConnected) clear(el, h('h3', { text: 'Context' }), h('p', { class: 'error', text: e.message }));
    }
  }
}
