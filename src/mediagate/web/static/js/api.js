// The /v1 API client. The API key lives in sessionStorage only (gone when the tab closes), is
// sent in the Authorization header only, and never appears in a URL.

const STORE = 'mediagate.apiKey';
/** sessionStorage keys of unfinished uploads (their tus URLs and upload tokens): they go with the key. */
export const UPLOAD_STATE = ['mediagate.tus:', 'mediagate.uploadToken:'];

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export const session = {
  key() {
    return sessionStorage.getItem(STORE);
  },
  save(secret) {
    sessionStorage.setItem(STORE, secret);
  },
  clear() {
    sessionStorage.removeItem(STORE);
    const stale = [];
    for (let i = 0; i < sessionStorage.length; i += 1) {
      const name = sessionStorage.key(i);
      if (name && UPLOAD_STATE.some((p) => name.startsWith(p))) stale.push(name);
    }
    stale.forEach((name) => sessionStorage.removeItem(name));
  },
};

/** A path segment list as a URL path: each segment percent-encoded, '/' kept between them. */
export function encodePath(key) {
  return key.split('/').map(encodeURIComponent).join('/');
}

/** The public read URL of an object (same origin), optionally with a processing spec. */
export function publicUrl(bucket, key, spec = '') {
  return `/${encodeURIComponent(bucket)}/${encodePath(key)}${spec ? `!${spec}` : ''}`;
}

export async function call(method, path, body, secret = session.key()) {
  const headers = { Accept: 'application/json' };
  if (secret) headers.Authorization = `Bearer ${secret}`;
  const init = { method, headers, credentials: 'omit', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (exc) {
    throw new ApiError(0, 'network', `The server could not be reached (${exc.message}).`);
  }
  if (response.status === 204) return null;
  let doc = null;
  try {
    doc = await response.json();
  } catch {
    doc = null;
  }
  if (!response.ok) {
    const err = (doc && doc.error) || {};
    throw new ApiError(
      response.status,
      err.code || `http_${response.status}`,
      err.message || `${method} ${path.split('?')[0]} answered ${response.status}`,
    );
  }
  return doc;
}

const q = (params) => {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') search.set(k, v);
  const text = search.toString();
  return text ? `?${text}` : '';
};

const b = (bucket) => `/v1/buckets/${encodeURIComponent(bucket)}`;

/** An object's bytes through /v1 (private buckets too), as a Blob. */
async function content(bucket, key) {
  const response = await fetch(`${b(bucket)}/content/${encodePath(key)}`, {
    headers: { Authorization: `Bearer ${session.key()}` },
    credentials: 'omit',
    cache: 'no-store',
  });
  if (!response.ok) throw new ApiError(response.status, `http_${response.status}`, `could not read ${key}`);
  return response.blob();
}

export const api = {
  content,
  me: (secret) => call('GET', '/v1/me', undefined, secret),
  buckets: () => call('GET', '/v1/buckets'),
  bucket: (bucket) => call('GET', b(bucket)),
  createBucket: (name) => call('POST', '/v1/buckets', { name }),
  deleteBucket: (bucket, force) => call('DELETE', `${b(bucket)}${q({ force: force ? 'true' : '' })}`),
  updateBucket: (bucket, settings) => call('PATCH', b(bucket), { settings }),
  usage: () => call('GET', '/v1/usage'),
  objects: (bucket, prefix, cursor, limit = 1000) =>
    call('GET', `${b(bucket)}/objects${q({ prefix, cursor, limit })}`),
  /** One folder level: `folders` (full prefixes ending in '/') and the files directly in it. */
  folder: (bucket, prefix, cursor, limit = 200) =>
    call('GET', `${b(bucket)}/objects${q({ prefix, cursor, limit, delimiter: '/' })}`),
  deleteObject: (bucket, key) => call('DELETE', `${b(bucket)}/objects/${encodePath(key)}`),
  /** The bucket's uploads, newest first (keyset-paged by upload time on the server). */
  recent: (bucket, cursor, limit = 50) => call('GET', `${b(bucket)}/objects${q({ order: 'newest', cursor, limit })}`),
  uploadToken: (bucket, request) => call('POST', `${b(bucket)}/upload-tokens`, request),
  uploadTokens: (bucket) => call('GET', `${b(bucket)}/upload-tokens`),
  revokeUploadToken: (bucket, id) => call('DELETE', `${b(bucket)}/upload-tokens/${encodeURIComponent(id)}`),
  keys: (bucket) => call('GET', `/v1/keys${q({ bucket })}`),
  createKey: (request) => call('POST', '/v1/keys', request),
  revokeKey: (keyId) => call('DELETE', `/v1/keys/${encodeURIComponent(keyId)}`),
  tasks: (bucket, status) => call('GET', `/v1/tasks${q({ bucket, status, limit: 100 })}`),
  retryTask: (id) => call('POST', `/v1/tasks/${encodeURIComponent(id)}/retry`),
  deliveries: (bucket, status) => call('GET', `/v1/deliveries${q({ bucket, status, limit: 100 })}`),
  delivery: (id) => call('GET', `/v1/deliveries/${encodeURIComponent(id)}`),
  redeliver: (id) => call('POST', `/v1/deliveries/${encodeURIComponent(id)}/redeliver`),
};
