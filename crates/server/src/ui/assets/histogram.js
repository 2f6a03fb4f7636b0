// Counts over time above the results, stacked by level, from the histogram
// endpoint. Dragging across it narrows the time range to the buckets covered.

import { h, clear, localTime, LEVELS } from './dom.js';

const HEIGHT = 96;
const AXIS = 16;
// Stacked bottom-up in this order; records without a level come first.
const STACK = ['', ...LEVELS];

export class Histogram {
  constructor(container, { onSelect }) {
    this.container = container;
    this.onSelect = onSelect;
    this.data = null;
    new ResizeObserver(() => this.data && this.draw()).observe(container);
  }

  show(data) {
    this.data = data;
    this.draw();
  }

  loading() {
    this.container.classList.add('is-loading');
  }

  draw() {
    const data = this.data;
    this.container.classList.remove('is-loading');
    const width = Math.max(this.container.clientWidth, 200);
    const buckets = data.buckets;
    const n = Math.max(buckets.length, 1);
    const step = width / n;
    const gap = step > 4 ? 1 : 0;
    const max = Math.max(1, ...buckets.map((b) => b.count));
    const plot = HEIGHT - AXIS;
    const svg = h('svg:svg', {
      class: 'histogram-svg',
      width,
      height: HEIGHT,
      viewBox: `0 0 ${width} ${HEIGHT}`,
      role: 'img',
      'aria-label': `Histogram: ${data.total} records from ${localTime(data.since)} to ${localTime(data.until)}`,
    });
    const intervalMs = data.interval_seconds * 1000;
    buckets.forEach((bucket, i) => {
      const g = h('svg:g', {
        class: 'bucket',
        'data-count': bucket.count,
        'data-ts': bucket.ts,
      });
      const parts = bucket.by || {};
      const detail = STACK.filter((l) => parts[l]).map((l) => `${l || 'no level'} ${parts[l]}`).join(', ');
      g.append(h('svg:title', { text: `${localTime(bucket.ts)}: ${bucket.count}${detail ? ` (${detail})` : ''}` }));
      let y = plot;
      for (const level of STACK) {
        const count = parts[level] || 0;
        if (!count) continue;
        const barHeight = Math.max(1, (count / max) * (plot - 4));
        y -= barHeight;
        g.append(h('svg:rect', {
          class: `bar bar-${level ? level.toLowerCase() : 'none'}`,
          x: (i * step).toFixed(2),
          y: y.toFixed(2),
          width: Math.max(step - gap, 0.5).toFixed(2),
          height: barHeight.toFixed(2),
        }));
      }
      // Hover target over the whole column, so thin bars are easy to point at.
      g.append(h('svg:rect', { class: 'bucket-hit', x: (i * step).toFixed(2), y: 0, width: step.toFixed(2), height: plot }));
      svg.append(g);
    });
    // Time ticks: about one per 140 px.
    const ticks = Math.max(2, Math.floor(width / 140));
    const since = Date.parse(buckets.length ? buckets[0].ts : data.since);
    const span = n * intervalMs;
    const dayLong = span > 36 * 3600 * 1000;
    for (let t = 0; t <= ticks; t++) {
      const x = (t / ticks) * width;
      const when = since + (t / ticks) * span;
      // MM-DD HH:MM over days, HH:MM:SS within one.
      const full = localTime(when, dayLong);
      const text = dayLong ? full.slice(5, 16) : full.slice(0, 8);
      svg.append(h('svg:text', {
        class: 'tick',
        x: Math.min(Math.max(x, 2), width - 2).toFixed(1),
        y: HEIGHT - 3,
        'text-anchor': t === 0 ? 'start' : t === ticks ? 'end' : 'middle',
        text,
      }));
    }
    const selection = h('svg:rect', { class: 'selection', x: 0, y: 0, width: 0, height: plot, visibility: 'hidden' });
    svg.append(selection);
    this.drag(svg, selection, { step, n, since, intervalMs });
    clear(this.container, svg);
  }

  drag(svg, selection, { step, n, since, intervalMs }) {
    let start = null;
    const xOf = (event) => {
      const box = svg.getBoundingClientRect();
      return Math.min(Math.max(event.clientX - box.left, 0), box.width - 0.01);
    };
    svg.addEventListener('pointerdown', (event) => {
      if (event.button !== 0) return;
      start = xOf(event);
      svg.setPointerCapture(event.pointerId);
      selection.setAttribute('x', start);
      selection.setAttribute('width', 0);
      selection.setAttribute('visibility', 'visible');
    });
    svg.addEventListener('pointermove', (event) => {
      if (start === null) return;
      const x = xOf(event);
      selection.setAttribute('x', Math.min(start, x));
      selection.setAttribute('width', Math.abs(x - start));
    });
    const finish = (event) => {
      if (start === null) return;
      const end = xOf(event);
      const [a, b] = [Math.min(start, end), Math.max(start, end)];
      start = null;
      selection.setAttribute('visibility', 'hidden');
      if (b - a < 3) return;
      const first = Math.floor(a / step);
      const last = Math.min(Math.floor(b / step), n - 1);
      // Whole buckets: from the first one's start to the last one's end (exclusive).
      this.onSelect(since + first * intervalMs, since + (last + 1) * intervalMs);
    };
    svg.addEventListener('pointerup', finish);
    svg.addEventListener('pointercancel', () => {
      start = null;
      selection.setAttribute('visibility', 'hidden');
    });
  }
}
