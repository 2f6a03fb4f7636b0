// Following the native stream (Server-Sent Events, read through fetch so that the
// resume point stays ours): every record once, in id order, across disconnects.
// After a cut the stream is reopened with `after=<last id seen>`, and the server
// catches up from the store, so nothing is lost or repeated.

import { get, SIGNED_OUT } from './api.js';

const FIRST_RETRY_MS = 250;
const MAX_RETRY_MS = 5000;
// The server sends a heartbeat every 15 s; silence for longer means a dead link.
const SILENCE_MS = 40000;

export class Follower {
  /**
   * params: URLSearchParams of native filters; after: where to start (a record id
   * or a cursor of the records API; none means now); skipUpTo: ids already shown;
   * onRecords(records) gets batches in id order; onState(state, detail) hears
   * 'connecting', 'live', 'reconnecting', 'error' and 'stopped'.
   */
  constructor({ params, after, skipUpTo, onRecords, onState }) {
    this.params = new URLSearchParams(params);
    this.resumeAfter = after === undefined || after === null ? null : String(after);
    this.lastId = skipUpTo || 0;
    this.onRecords = onRecords;
    this.onState = onState || (() => {});
    this.stopped = false;
    this.retryMs = FIRST_RETRY_MS;
    this.reconnects = 0;
  }

  start() {
    this.connect();
    return this;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.silenceTimer);
    if (this.abort) this.abort.abort();
    this.onState('stopped');
  }

  async connect() {
    if (this.stopped) return;
    this.abort = new AbortController();
    const params = new URLSearchParams(this.params);
    if (this.resumeAfter !== null) params.set('after', this.resumeAfter);
    this.onState(this.reconnects ? 'reconnecting' : 'connecting', { after: this.resumeAfter });
    try {
      const response = await fetch(`/logbook/v1/stream?${params}`, {
        credentials: 'same-origin',
        headers: { accept: 'text/event-stream' },
        signal: this.abort.signal,
      });
      if (response.status === 401) {
        window.dispatchEvent(new CustomEvent(SIGNED_OUT));
        this.stop();
        return;
      }
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        this.onState('error', { message: body.error || `HTTP ${response.status}` });
        this.stopped = true;
        return;
      }
      await this.read(response.body.getReader());
    } catch (e) {
      if (this.stopped) return;
    }
    this.retry();
  }

  retry() {
    if (this.stopped) return;
    clearTimeout(this.silenceTimer);
    this.reconnects += 1;
    this.onState('reconnecting', { after: this.resumeAfter, inMs: this.retryMs });
    this.retryTimer = setTimeout(() => this.connect(), this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, MAX_RETRY_MS);
  }

  armSilence() {
    clearTimeout(this.silenceTimer);
    this.silenceTimer = setTimeout(() => this.abort && this.abort.abort(), SILENCE_MS);
  }

  async read(reader) {
    const decoder = new TextDecoder();
    let buffer = '';
    let event = { data: [], type: 'message', id: null };
    this.armSilence();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      this.armSilence();
      buffer += decoder.decode(value, { stream: true });
      let newline;
      const batch = [];
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline).replace(/\r$/, '');
        buffer = buffer.slice(newline + 1);
        if (line === '') {
          this.dispatch(event, batch);
          event = { data: [], type: 'message', id: null };
        } else if (line.startsWith(':')) {
          if (line.startsWith(': subscribed')) {
            this.retryMs = FIRST_RETRY_MS;
            this.onState('live', { after: this.resumeAfter, reconnects: this.reconnects });
          }
        } else {
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (field === 'data') event.data.push(text);
          else if (field === 'event') event.type = text;
          else if (field === 'id') event.id = text;
        }
      }
      if (batch.length) this.onRecords(batch);
    }
  }

  dispatch(event, batch) {
    if (!event.data.length) return;
    let data;
    try {
      data = JSON.parse(event.data.join('\n'));
    } catch {
      return;
    }
    if (event.type === 'end') {
      // The server is stopping or found us too slow: reconnect from where it says.
      if (Number.isFinite(data.resume_after)) this.resumeAfter = String(data.resume_after);
      if (this.abort) this.abort.abort();
      return;
    }
    if (!Number.isFinite(data.id)) return;
    // In id order: the next connection resumes after this one, shown or not.
    this.resumeAfter = String(data.id);
    if (data.id > this.lastId) {
      this.lastId = data.id;
      batch.push(data);
    }
  }
}

/**
 * Where the store is now, as a cursor to follow from: an ascending page always
 * carries the resume cursor, even an empty one (nothing is that far in the future).
 */
export async function highWater() {
  const future = new Date(Date.now() + 100 * 365 * 86400e3).toISOString();
  const page = await get(`/logbook/v1/records?order=asc&limit=1&since=${encodeURIComponent(future)}`);
  return page.next_cursor;
}
