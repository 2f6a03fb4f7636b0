// The search page: box, level toggles, field chips, time range, order, live, the
// histogram and the dense result list. The URL holds the whole search (the
// native API's own parameter names), so a link reproduces it.

import { get, query, ApiError } from './api.js';
import { h, clear, timeCell, levelBadge, LEVELS, throttle } from './dom.js';
import { Histogram } from './histogram.js';
import { Follower, highWater } from './live.js';
import { RecordPanel } from './panel.js';

/** Fields filtered as chips (`field=a,b` keeps, `not_field=a,b` excludes). */
export const FIELDS = [
  'kind', 'category', 'source', 'instance', 'logger', 'user', 'user_id', 'domain_id',
  'project_id', 'object_type', 'object_id', 'action', 'status', 'request_id',
];

export const RANGES = [
  ['5m', 'Last 5 minutes', 5 * 60e3],
  ['15m', 'Last 15 minutes', 15 * 60e3],
  ['1h', 'Last hour', 3600e3],
  ['6h', 'Last 6 hours', 6 * 3600e3],
  ['24h', 'Last 24 hours', 24 * 3600e3],
  ['7d', 'Last 7 days', 7 * 86400e3],
  ['30d', 'Last 30 days', 30 * 86400e3],
  ['all', 'All time', null],
  ['custom', 'Custom range', null],
];
const DEFAULT_RANGE = '24h';
const PAGE = 100;
// A long live session keeps at most this many rows on the page.
const MAX_ROWS = 5000;

/** The search as the URL says it. */
export function readState(search) {
  const p = new URLSearchParams(search);
  const list = (name) => (p.get(name) || '').split(',').map((v) => v.trim()).filter(Boolean);
  const state = {
    q: p.get('q') || '',
    levels: list('level').map((l) => l.toUpperCase()),
    minLevel: p.get('min_level') || '',
    include: {},
    exclude: {},
    range: p.get('range') || (p.get('since') || p.get('until') ? 'custom' : DEFAULT_RANGE),
    since: p.get('since') || '',
    until: p.get('until') || '',
    order: p.get('order') === 'asc' ? 'asc' : 'desc',
    live: p.get('live') === '1',
    record: p.get('record') || '',
  };
  for (const field of FIELDS) {
    if (list(field).length) state.include[field] = list(field);
    if (list(`not_${field}`).length) state.exclude[field] = list(`not_${field}`);
  }
  if (state.levels.length === 0 && list('not_level').length) state.exclude.level = list('not_level');
  return state;
}

/** The URL query of a search: what the address bar shows and a link carries. */
export function writeState(state) {
  const p = filterParams(state);
  if (state.range === 'custom') {
    if (state.since) p.set('since', state.since);
    if (state.until) p.set('until', state.until);
  } else if (state.range !== DEFAULT_RANGE) {
    p.set('range', state.range);
  }
  if (state.order === 'asc') p.set('order', 'asc');
  if (state.live) p.set('live', '1');
  if (state.record) p.set('record', state.record);
  return p;
}

/** The native filters of a search (no time range, order or paging). */
function filterParams(state) {
  const p = new URLSearchParams();
  if (state.q) p.set('q', state.q);
  if (state.levels.length) p.set('level', state.levels.join(','));
  if (state.minLevel) p.set('min_level', state.minLevel);
  for (const [field, values] of Object.entries(state.include)) if (values.length) p.set(field, values.join(','));
  for (const [field, values] of Object.entries(state.exclude)) if (values.length) p.set(`not_${field}`, values.join(','));
  return p;
}

/** An instant as RFC 3339 with microseconds; `lastMicro` names the end of its ms. */
export function iso(ms, lastMicro = false) {
  const text = new Date(ms).toISOString();
  return lastMicro ? text.replace('Z', '999Z') : text;
}

/** `2026-11-23T10:00:00` for a datetime-local input, in local time. */
function localInput(ts) {
  const ms = Date.parse(ts);
  if (Number.isNaN(ms)) return '';
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60e3);
  return d.toISOString().slice(0, 19);
}

export class SearchPage {
  constructor(root, session) {
    this.root = root;
    this.session = session;
    this.state = readState(location.search);
    this.run = 0;
    this.pending = [];
    this.follower = null;
    this.build();
    this.panel = new RecordPanel(this.panelEl, {
      onFilter: (field, op, value) => this.addFilter(field, op, value),
      onClose: () => {
        this.state.record = '';
        this.replaceUrl();
      },
      onOpen: (id) => {
        this.state.record = String(id);
        this.replaceUrl();
      },
    });
    this.search({ push: false });
    if (this.state.record) this.panel.open(this.state.record);
  }

  destroy() {
    this.stopLive();
    this.panel.close(false);
  }

  /** Applies a URL the browser went back or forward to. */
  restore() {
    this.state = readState(location.search);
    this.syncControls();
    this.search({ push: false });
    if (this.state.record) this.panel.open(this.state.record);
    else this.panel.close(false);
  }

  build() {
    this.input = h('input', {
      type: 'search',
      class: 'search-input',
      'aria-label': 'Search',
      placeholder: 'Search messages (case-insensitive)   /',
      autocomplete: 'off',
      spellcheck: 'false',
    });
    const form = h('form', {
      class: 'search-form',
      role: 'search',
      onsubmit: (e) => {
        e.preventDefault();
        this.state.q = this.input.value.trim();
        this.search({ push: true });
      },
    }, this.input, h('button', { type: 'submit', class: 'primary', text: 'Search' }));

    this.rangeSelect = h('select', {
      'aria-label': 'Time range',
      onchange: () => {
        const range = this.rangeSelect.value;
        if (range === 'custom') {
          const now = Date.now();
          const span = (RANGES.find(([k]) => k === this.state.range) || [0, 0, 86400e3])[2] || 86400e3;
          this.state.since = this.state.since || iso(now - span);
          this.state.until = this.state.until || iso(now);
        }
        this.state.range = range;
        if (range === 'custom' && this.state.live) this.state.live = false;
        this.search({ push: true });
      },
    }, RANGES.map(([key, label]) => h('option', { value: key, text: label })));
    this.fromInput = h('input', { type: 'datetime-local', step: '1', 'aria-label': 'From', onchange: () => this.customRange() });
    this.toInput = h('input', { type: 'datetime-local', step: '1', 'aria-label': 'To', onchange: () => this.customRange() });
    this.customEl = h('span', { class: 'custom-range' }, this.fromInput, '–', this.toInput);

    this.orderButton = h('button', {
      type: 'button',
      class: 'toggle',
      'aria-label': 'Oldest first',
      onclick: () => {
        this.state.order = this.state.order === 'asc' ? 'desc' : 'asc';
        if (this.state.order === 'asc') this.state.live = false;
        this.search({ push: true });
      },
    });
    this.liveToggle = h('input', {
      type: 'checkbox',
      role: 'switch',
      id: 'live-toggle',
      onchange: () => {
        this.state.live = this.liveToggle.checked;
        if (this.state.live) {
          this.state.order = 'desc';
          if (this.state.range === 'custom' || this.state.range === 'all') this.state.range = '1h';
        }
        this.search({ push: true });
      },
    });
    const live = h('label', { class: 'live-label', for: 'live-toggle' }, this.liveToggle, h('span', { text: 'Live' }));
    this.exportCsv = h('a', { class: 'button', text: 'CSV', download: 'logbook-export.csv', title: 'Export the search as CSV' });
    this.exportNdjson = h('a', { class: 'button', text: 'NDJSON', download: 'logbook-export.ndjson', title: 'Export the search as NDJSON' });
    const exports = h('span', { class: 'exports', role: 'group', 'aria-label': 'Export' }, h('span', { class: 'muted', text: 'Export' }), this.exportCsv, this.exportNdjson);

    this.levelButtons = LEVELS.map((level) => h('button', {
      type: 'button',
      class: `toggle level-toggle level-${level.toLowerCase()}`,
      'aria-pressed': 'false',
      text: level,
      onclick: () => {
        const on = this.state.levels.includes(level);
        this.state.levels = on ? this.state.levels.filter((l) => l !== level) : [...this.state.levels, level];
        this.search({ push: true });
      },
    }));
    this.chipsEl = h('div', { class: 'chips', 'aria-label': 'Filters' });
    this.filterForm = this.buildFilterForm();

    this.summaryEl = h('div', { class: 'summary', role: 'status' });
    this.histogramEl = h('div', { class: 'histogram' });
    this.histogram = new Histogram(this.histogramEl, {
      onSelect: (since, untilExclusive) => {
        this.state.range = 'custom';
        this.state.since = iso(since);
        this.state.until = iso(untilExclusive - 1, true);
        this.state.live = false;
        this.search({ push: true });
      },
    });
    this.liveBanner = h('button', { type: 'button', class: 'live-banner', hidden: true, onclick: () => this.flush(true) });
    this.liveStatus = h('span', { class: 'live-status', role: 'status' });
    this.list = h('ol', { class: 'results', 'aria-label': 'Results' });
    this.more = h('button', { type: 'button', class: 'more', text: 'Load more', hidden: true, onclick: () => this.loadMore() });
    this.scroller = h('div', { class: 'results-scroll' }, this.liveBanner, this.list, this.more);
    this.panelEl = h('aside', { class: 'panel', hidden: true, 'aria-label': 'Record' });

    this.scroller.addEventListener('scroll', () => {
      if (this.isReading()) return;
      this.flush(false);
    });
    document.addEventListener('selectionchange', this.onSelection = () => {
      if (!this.isReading()) this.flush(false);
    });
    new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) this.loadMore();
    }, { root: this.scroller, rootMargin: '400px' }).observe(this.more);

    clear(this.root,
      h('section', { class: 'search-bar' },
        h('div', { class: 'search-row' }, form, this.rangeSelect, this.customEl, this.orderButton, live, exports),
        h('div', { class: 'filter-row' },
          h('div', { class: 'levels', role: 'group', 'aria-label': 'Levels' }, this.levelButtons),
          this.chipsEl, this.filterForm)),
      h('section', { class: 'overview' }, h('div', { class: 'overview-head' }, this.summaryEl, this.liveStatus), this.histogramEl),
      h('div', { class: 'workspace' }, this.scroller, this.panelEl));
    this.syncControls();
  }

  buildFilterForm() {
    const field = h('select', { 'aria-label': 'Field' }, FIELDS.map((f) => h('option', { value: f, text: f })));
    const op = h('select', { 'aria-label': 'Operator' }, h('option', { value: '=', text: '=' }), h('option', { value: '!=', text: '≠' }));
    const datalist = h('datalist', { id: 'value-suggestions' });
    const value = h('input', { 'aria-label': 'Value', list: 'value-suggestions', placeholder: 'value', autocomplete: 'off' });
    const suggest = async () => {
      const f = field.value;
      try {
        const values = await this.suggestions(f);
        if (field.value !== f) return;
        clear(datalist, values.map(([v, n]) => h('option', { value: v, label: `${v} (${n})` })));
      } catch {
        clear(datalist);
      }
    };
    field.addEventListener('change', suggest);
    value.addEventListener('focus', suggest, { once: false });
    return h('form', {
      class: 'add-filter',
      'aria-label': 'Add a filter',
      onsubmit: (e) => {
        e.preventDefault();
        if (!value.value.trim()) return;
        this.addFilter(field.value, op.value, value.value.trim());
        value.value = '';
      },
    }, field, op, value, datalist, h('button', { type: 'submit', text: 'Add filter' }));
  }

  /** The commonest values of a field in the current search, from the histogram. */
  suggestions(field) {
    // One group-by per field and search: focusing the box again asks nothing.
    const key = `${this.run}:${field}`;
    this.suggested = this.suggested && this.suggested.run === this.run ? this.suggested : { run: this.run, values: new Map() };
    if (!this.suggested.values.has(key)) this.suggested.values.set(key, this.fetchSuggestions(field));
    return this.suggested.values.get(key);
  }

  async fetchSuggestions(field) {
    const { since, until } = this.resolved || {};
    if (!since || !until) return [];
    const p = filterParams({ ...this.state, include: { ...this.state.include, [field]: [] }, exclude: { ...this.state.exclude, [field]: [] } });
    p.set('by', field);
    p.set('since', since);
    p.set('until', until);
    const span = Math.max(1, Math.ceil((Date.parse(until) - Date.parse(since)) / 1000) + 1);
    p.set('interval', String(span));
    const answer = await get(`/logbook/v1/histogram${query(p)}`);
    const totals = new Map();
    for (const bucket of answer.buckets) {
      for (const [v, n] of Object.entries(bucket.by || {})) if (v) totals.set(v, (totals.get(v) || 0) + n);
    }
    return [...totals].sort((a, b) => b[1] - a[1]).slice(0, 50);
  }

  addFilter(field, op, value) {
    if (field === 'level' && op === '=') {
      this.state.levels = [value.toUpperCase()];
    } else {
      const target = op === '=' ? this.state.include : this.state.exclude;
      const values = target[field] || [];
      if (!values.includes(value)) target[field] = [...values, value];
    }
    this.search({ push: true });
  }

  removeFilter(kind, field, value) {
    if (kind === 'min') this.state.minLevel = '';
    else {
      const target = kind === '=' ? this.state.include : this.state.exclude;
      target[field] = (target[field] || []).filter((v) => v !== value);
      if (!target[field].length) delete target[field];
    }
    this.search({ push: true });
  }

  customRange() {
    const from = Date.parse(this.fromInput.value);
    const to = Date.parse(this.toInput.value);
    this.state.range = 'custom';
    this.state.since = Number.isNaN(from) ? '' : iso(from);
    this.state.until = Number.isNaN(to) ? '' : iso(to + 999, true);
    this.state.live = false;
    this.search({ push: true });
  }

  syncControls() {
    const s = this.state;
    this.input.value = s.q;
    this.rangeSelect.value = s.range;
    this.customEl.hidden = s.range !== 'custom';
    this.fromInput.value = s.since ? localInput(s.since) : '';
    this.toInput.value = s.until ? localInput(s.until) : '';
    this.orderButton.textContent = s.order === 'asc' ? 'Oldest first' : 'Newest first';
    this.orderButton.setAttribute('aria-label', s.order === 'asc' ? 'Oldest first' : 'Newest first');
    this.orderButton.setAttribute('title', 'Switch the order');
    this.liveToggle.checked = s.live;
    LEVELS.forEach((level, i) => this.levelButtons[i].setAttribute('aria-pressed', String(s.levels.includes(level))));
    const chip = (kind, field, value) => h('span', { class: `chip${kind === '!=' ? ' chip-not' : ''}` },
      h('span', { text: `${field} ${kind === '!=' ? '≠' : kind === 'min' ? '≥' : '='} ${value}` }),
      h('button', {
        type: 'button',
        class: 'chip-remove',
        'aria-label': `Remove filter ${field} ${kind === '!=' ? '!=' : kind === 'min' ? '>=' : '='} ${value}`,
        text: '×',
        onclick: () => this.removeFilter(kind, field, value),
      }));
    const chips = [];
    if (s.minLevel) chips.push(chip('min', 'level', s.minLevel));
    for (const [f, values] of Object.entries(s.include)) for (const v of values) chips.push(chip('=', f, v));
    for (const [f, values] of Object.entries(s.exclude)) for (const v of values) chips.push(chip('!=', f, v));
    clear(this.chipsEl, chips);
  }

  pushUrl() {
    const text = writeState(this.state).toString();
    history.pushState(null, '', text ? `/?${text}` : '/');
  }

  replaceUrl() {
    const text = writeState(this.state).toString();
    history.replaceState(null, '', text ? `/?${text}` : '/');
  }

  /** The time range of this run, "now" resolved once so the list and histogram agree. */
  async resolveRange(filters) {
    const s = this.state;
    if (s.range === 'custom') {
      return { since: s.since || '', until: s.until || '' };
    }
    const now = Date.now();
    if (s.range === 'all') {
      const edge = async (order) => {
        const p = new URLSearchParams(filters);
        p.set('order', order);
        p.set('limit', '1');
        const page = await get(`/logbook/v1/records${query(p)}`);
        return page.records.length ? page.records[0].ts : '';
      };
      const [first, last] = await Promise.all([edge('asc'), edge('desc')]);
      return { since: first || iso(now - 86400e3), until: last || iso(now), all: true };
    }
    const span = (RANGES.find(([k]) => k === s.range) || RANGES[4])[2];
    return { since: iso(now - span), until: iso(now, true), relative: true };
  }

  async search({ push }) {
    const run = ++this.run;
    const started = performance.now();
    if (push) this.pushUrl();
    else this.replaceUrl();
    this.syncControls();
    this.stopLive();
    document.body.dataset.searchState = 'running';
    this.histogram.loading();
    const filters = filterParams(this.state);
    this.exportCsv.removeAttribute('href');
    this.exportNdjson.removeAttribute('href');
    let range;
    try {
      range = await this.resolveRange(filters);
    } catch (e) {
      return this.failed(run, e);
    }
    if (run !== this.run) return;
    this.resolved = range;
    const pageParams = new URLSearchParams(filters);
    if (range.since) pageParams.set('since', range.since);
    if (range.until && !this.state.live) pageParams.set('until', range.until);
    pageParams.set('order', this.state.order);
    pageParams.set('limit', String(PAGE));
    const histParams = new URLSearchParams(filters);
    histParams.set('by', 'level');
    if (range.since) histParams.set('since', range.since);
    if (range.until) histParams.set('until', range.until);
    const exportParams = new URLSearchParams(filters);
    if (range.since) exportParams.set('since', range.since);
    if (range.until) exportParams.set('until', range.until);
    this.exportCsv.href = `/logbook/v1/export${query({ format: 'csv' })}&${exportParams}`;
    this.exportNdjson.href = `/logbook/v1/export${query({ format: 'ndjson' })}&${exportParams}`;
    // Live: the stream resumes after the high-water mark read *before* the first
    // page, so a record committed in between is streamed (and shown once).
    const position = this.state.live ? highWater() : null;
    const pageDone = (async () => {
      const page = await get(`/logbook/v1/records${query(pageParams)}`);
      if (run !== this.run) return;
      this.pageParams = pageParams;
      this.showPage(page);
      // The list shows before a slow histogram: its own time, for measurements.
      await new Promise((resolve) => requestAnimationFrame(() => resolve()));
      if (run === this.run) document.body.dataset.pageMs = String(Math.round(performance.now() - started));
    })();
    const histogramDone = (async () => {
      const data = await get(`/logbook/v1/histogram${query(histParams)}`);
      if (run !== this.run) return;
      this.histogramData = data;
      this.histogram.show(data);
      this.showSummary(data, range);
    })();
    try {
      await Promise.all([pageDone, histogramDone]);
    } catch (e) {
      return this.failed(run, e);
    }
    if (run !== this.run) return;
    await new Promise((resolve) => requestAnimationFrame(() => resolve()));
    const ms = Math.round(performance.now() - started);
    document.body.dataset.searchMs = String(ms);
    document.body.dataset.searchState = 'done';
    this.summaryEl.dataset.ms = String(ms);
    this.timingEl.textContent = ` · ${ms} ms`;
    if (this.state.live) {
      try {
        this.startLive(filters, await position);
      } catch (e) {
        this.failed(run, e);
      }
    }
  }

  failed(run, error) {
    if (run !== this.run) return;
    document.body.dataset.searchState = 'error';
    const message = error instanceof ApiError ? error.message : String(error);
    clear(this.summaryEl, h('span', { class: 'error', role: 'alert', text: `Search failed: ${message}` }));
    clear(this.list);
    this.more.hidden = true;
  }

  showSummary(data, range) {
    this.timingEl = h('span', { class: 'muted timing' });
    const count = h('strong', { class: 'total', 'data-total': data.total, text: data.total.toLocaleString() });
    clear(this.summaryEl, count, data.total === 1 ? ' record' : ' records',
      h('span', { class: 'muted', text: ` · ${this.rangeLabel(range)} · ${data.interval_seconds >= 1 ? `${data.interval_seconds}s` : `${data.interval_seconds * 1000}ms`} buckets` }),
      this.timingEl);
  }

  rangeLabel(range) {
    const preset = RANGES.find(([k]) => k === this.state.range);
    if (this.state.range !== 'custom' && preset) return preset[1];
    return `${range.since ? range.since.replace('T', ' ').slice(0, 19) : '…'} – ${range.until ? range.until.replace('T', ' ').slice(0, 19) : 'now'} UTC`;
  }

  showPage(page) {
    this.cursor = page.next_cursor;
    this.maxId = page.records.reduce((m, r) => Math.max(m, r.id), 0);
    this.shown = new Set();
    this.pending = [];
    this.liveBanner.hidden = true;
    this.scroller.scrollTop = 0;
    clear(this.list, page.records.map((r) => this.row(r)));
    page.records.forEach((r) => this.shown.add(r.id));
    // Ascending pages always return a cursor (to resume later); a short page ends.
    this.more.hidden = !this.cursor || page.records.length < PAGE;
    if (!page.records.length) this.showEmpty();
  }

  async showEmpty() {
    const hint = h('li', { class: 'empty' }, h('p', { text: 'No records match this search.' }));
    clear(this.list, hint);
    if (this.state.range === 'all') return;
    // Say where the nearest records are, instead of an empty page with no way on.
    const p = filterParams(this.state);
    p.set('limit', '1');
    try {
      const newest = await get(`/logbook/v1/records${query(p)}`);
      if (!newest.records.length || !hint.isConnected) return;
      const ts = newest.records[0].ts;
      const jump = h('button', {
        type: 'button',
        class: 'link',
        text: 'Show the records around it',
        onclick: () => {
          const at = Date.parse(ts);
          this.state.range = 'custom';
          this.state.since = iso(at - 3600e3);
          this.state.until = iso(at + 60e3, true);
          this.state.live = false;
          this.search({ push: true });
        },
      });
      hint.append(h('p', {}, 'The newest matching record outside this range is from ', timeCell(ts), '. ', jump));
    } catch {
      // The hint is optional.
    }
  }

  async loadMore() {
    if (this.loadingMore || this.more.hidden || !this.cursor || !this.pageParams) return;
    this.loadingMore = true;
    const run = this.run;
    const p = new URLSearchParams(this.pageParams);
    p.set('cursor', this.cursor);
    try {
      const page = await get(`/logbook/v1/records${query(p)}`);
      if (run !== this.run) return;
      this.cursor = page.next_cursor;
      const rows = page.records.filter((r) => !this.shown.has(r.id));
      rows.forEach((r) => this.shown.add(r.id));
      this.list.append(...rows.map((r) => this.row(r)));
      this.more.hidden = !this.cursor || page.records.length < PAGE;
    } catch (e) {
      this.more.textContent = `Load more (failed: ${e.message})`;
    } finally {
      this.loadingMore = false;
    }
  }

  row(record) {
    const where = [record.source, record.instance].filter(Boolean).join(' / ');
    const li = h('li', {
      class: 'row',
      tabindex: '0',
      'data-id': record.id,
      'aria-label': `Record ${record.id}`,
      onclick: () => {
        if (String(document.getSelection() || '')) return;
        this.panel.open(record.id, record);
      },
      onkeydown: (e) => {
        if (e.key === 'Enter') this.panel.open(record.id, record);
      },
    },
    timeCell(record.ts),
    levelBadge(record.level),
    h('span', { class: 'cell category', text: record.category || '' }),
    h('span', { class: 'cell where', text: where, title: where }),
    h('span', { class: 'cell user', text: record.user || '' }),
    h('span', { class: 'cell message', text: record.message || (record.data ? JSON.stringify(record.data) : '') }));
    if (this.state.record && String(record.id) === this.state.record) li.classList.add('selected');
    return li;
  }

  // ---- live ----

  startLive(filters, cursor) {
    const params = new URLSearchParams(filters);
    if (this.resolved && this.resolved.since) params.set('since', this.resolved.since);
    this.liveCount = 0;
    this.refreshHistogram = throttle(() => this.reloadHistogram(), 5000);
    this.follower = new Follower({
      params,
      after: cursor,
      skipUpTo: this.maxId,
      onRecords: (records) => this.arrived(records),
      onState: (state, detail) => this.liveState(state, detail),
    }).start();
  }

  stopLive() {
    if (this.follower) this.follower.stop();
    this.follower = null;
    if (this.liveStatus) {
      this.liveStatus.textContent = '';
      delete this.liveStatus.dataset.state;
    }
  }

  liveState(state, detail = {}) {
    this.liveStatus.dataset.state = state;
    this.liveStatus.dataset.reconnects = String(this.follower ? this.follower.reconnects : 0);
    const text = {
      connecting: 'Live: connecting…',
      live: 'Live: following',
      reconnecting: 'Live: connection lost, resuming…',
      error: `Live stopped: ${detail.message || ''}`,
      stopped: '',
    }[state];
    this.liveStatus.textContent = text || '';
  }

  /** Whether the user is reading: scrolled down the list, or selecting in it. */
  isReading() {
    if (this.scroller.scrollTop > 8) return true;
    const selection = document.getSelection();
    return Boolean(selection && !selection.isCollapsed && this.scroller.contains(selection.anchorNode));
  }

  arrived(records) {
    const fresh = records.filter((r) => !this.shown.has(r.id));
    if (!fresh.length) return;
    fresh.forEach((r) => this.shown.add(r.id));
    this.liveCount += fresh.length;
    this.pending.push(...fresh);
    if (this.histogramData) this.refreshHistogram();
    if (this.isReading()) {
      this.liveBanner.hidden = false;
      this.liveBanner.textContent = `Paused while you read: ${this.pending.length} new ${this.pending.length === 1 ? 'record' : 'records'}. Show them`;
      this.liveBanner.dataset.pending = String(this.pending.length);
    } else {
      this.flush(false);
    }
  }

  flush(scrollUp) {
    if (!this.pending.length) {
      this.liveBanner.hidden = true;
      return;
    }
    const empty = this.list.querySelector('.empty');
    if (empty) empty.remove();
    // Newest first: the batch arrives in id order, so the last goes on top.
    const rows = this.pending.slice().reverse().map((r) => this.row(r));
    this.pending = [];
    this.list.prepend(...rows);
    while (this.list.children.length > MAX_ROWS) {
      this.list.lastElementChild.remove();
      this.more.hidden = true;
    }
    this.liveBanner.hidden = true;
    delete this.liveBanner.dataset.pending;
    if (scrollUp) this.scroller.scrollTop = 0;
  }

  async reloadHistogram() {
    if (!this.state.live || !this.resolved) return;
    const range = this.resolved;
    const span = (RANGES.find(([k]) => k === this.state.range) || RANGES[4])[2];
    const now = Date.now();
    const p = filterParams(this.state);
    p.set('by', 'level');
    p.set('since', iso(now - span));
    p.set('until', iso(now, true));
    try {
      const data = await get(`/logbook/v1/histogram${query(p)}`);
      if (!this.state.live) return;
      this.histogramData = data;
      this.histogram.show(data);
      range.since = data.since;
      range.until = data.until;
      this.showSummary(data, range);
    } catch {
      // The next arrival tries again.
    }
  }

  onKey(event) {
    if (event.key === 'Escape' && this.panel.isOpen()) {
      this.panel.close();
      return true;
    }
    return false;
  }

  focusSearch() {
    this.input.focus();
    this.input.select();
  }
}
