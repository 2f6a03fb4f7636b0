// The public APIs as the pages use them: same origin, the session cookie, JSON.

export class ApiError extends Error {
  constructor(status, body) {
    const message = body && body.error ? body.error : `HTTP ${status}`;
    super(body && body.field ? `${body.field}: ${message}` : message);
    this.status = status;
    this.field = body && body.field;
  }
}

/** Sent when a request finds the session gone, so the app can ask to sign in. */
export const SIGNED_OUT = 'logbook:signed-out';

export async function request(method, path, body, { signal } = {}) {
  const init = { method, credentials: 'same-origin', headers: { accept: 'application/json' }, signal };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = { error: text.slice(0, 200) };
  }
  if (!response.ok) {
    if (response.status === 401 && path !== '/logbook/v1/login') {
      window.dispatchEvent(new CustomEvent(SIGNED_OUT));
    }
    throw new ApiError(response.status, parsed);
  }
  return parsed;
}

export const get = (path, options) => request('GET', path, undefined, options);
export const post = (path, body) => request('POST', path, body === undefined ? {} : body);
export const patch = (path, body) => request('PATCH', path, body);
export const del = (path) => request('DELETE', path);

/** `?a=1&b=2` from an object or URLSearchParams, skipping empty values. */
export function query(params) {
  const out = new URLSearchParams();
  const entries = params instanceof URLSearchParams ? params.entries() : Object.entries(params);
  for (const [k, v] of entries) {
    if (v !== undefined && v !== null && v !== '') out.append(k, String(v));
  }
  const text = out.toString();
  return text ? `?${text}` : '';
}

export const whoami = () => get('/logbook/v1/whoami');
export const login = (username, password) => post('/logbook/v1/login', { username, password });
export const logout = () => post('/logbook/v1/logout');
