// Building the page. Every text from the store goes in through textContent or an
// attribute, never as HTML: records are written by other programs.

/** h('div', {class: 'x', onclick: f, 'aria-label': 'y'}, child, 'text', [more]) */
export function h(tag, props, ...children) {
  const el = tag.startsWith('svg:')
    ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4))
    : document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'class') {
      el.setAttribute('class', value);
    } else if (key === 'text') {
      el.textContent = value;
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (key === 'value' && 'value' in el) {
      el.value = value;
    } else if (key === 'checked' || key === 'disabled' || key === 'selected') {
      el[key] = Boolean(value);
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

/** Milliseconds since the epoch of an RFC 3339 timestamp (microseconds dropped). */
export function millis(ts) {
  return Date.parse(ts);
}

/** `2026-11-23 10:00:00.123` in the browser's time zone. */
export function localTime(ts, withDate = true) {
  const d = new Date(typeof ts === 'number' ? ts : millis(ts));
  if (Number.isNaN(d.getTime())) return String(ts);
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  if (!withDate) return time;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
}

/** The same instant in UTC, with the microseconds the server gave. */
export function utcTime(ts) {
  if (typeof ts === 'string' && ts.endsWith('Z')) return ts.replace('T', ' ').replace('Z', ' UTC');
  const d = new Date(typeof ts === 'number' ? ts : millis(ts));
  return Number.isNaN(d.getTime()) ? String(ts) : d.toISOString().replace('T', ' ').replace('Z', ' UTC');
}

/** What a time cell shows, and its hover text with both zones. */
export function timeCell(ts, cls = 'time') {
  return h('time', {
    class: cls,
    datetime: ts,
    title: `${localTime(ts)} local\n${utcTime(ts)}`,
    text: localTime(ts),
  });
}

/** 1h 02m, 3m 05s, 4.2s. */
export function duration(ms) {
  if (!Number.isFinite(ms) || ms < 0) return '';
  const s = ms / 1000;
  if (s < 10) return `${s.toFixed(1)}s`;
  if (s < 60) return `${Math.round(s)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${pad(Math.floor(s % 60))}s`;
  const hours = Math.floor(m / 60);
  if (hours < 48) return `${hours}h ${pad(m % 60)}m`;
  return `${Math.floor(hours / 24)}d ${pad(hours % 24)}h`;
}

export const LEVELS = ['DEBUG', 'INFO', 'WARN', 'ERROR', 'CRITICAL'];

export function levelBadge(level) {
  const name = level || '-';
  return h('span', { class: `level level-${name.toLowerCase()}`, text: name });
}

export function stateBadge(state) {
  const cls = String(state || 'unknown').toLowerCase().replace(/[^a-z]+/g, '-');
  return h('span', { class: `state state-${cls}`, text: state || '—' });
}

/** A JSON value as a tree of <details>, collapsed below `open` levels. */
export function jsonTree(value, open = 2, key = null) {
  const label = key === null ? null : h('span', { class: 'json-key', text: key });
  if (value !== null && typeof value === 'object') {
    const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v]) : Object.entries(value);
    const brackets = Array.isArray(value) ? ['[', ']'] : ['{', '}'];
    if (entries.length === 0) {
      return h('div', { class: 'json-leaf' }, label, label && ': ', `${brackets[0]}${brackets[1]}`);
    }
    return h(
      'details',
      { class: 'json-node', open: open > 0 },
      h('summary', {}, label, label && ': ', h('span', { class: 'json-meta', text: `${brackets[0]} ${entries.length} ${Array.isArray(value) ? 'items' : 'keys'} ${brackets[1]}` })),
      entries.map(([k, v]) => jsonTree(v, open - 1, k)),
    );
  }
  const type = value === null ? 'null' : typeof value;
  return h('div', { class: 'json-leaf' }, label, label && ': ', h('span', { class: `json-${type}`, text: JSON.stringify(value) }));
}

/** Writes text to the clipboard; falls back to selecting it for a manual copy. */
export async function copy(text, input) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    if (input) input.select();
    return false;
  }
}

/** Calls `fn` at most once per `ms`, the last call winning. */
export function throttle(fn, ms) {
  let timer = null;
  let last = 0;
  return (...args) => {
    const wait = last + ms - Date.now();
    clearTimeout(timer);
    if (wait <= 0) {
      last = Date.now();
      fn(...args);
    } else {
      timer = setTimeout(() => {
        last = Date.now();
        fn(...args);
      }, wait);
    }
  };
}
