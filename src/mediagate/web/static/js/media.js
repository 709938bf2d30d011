// Where the page gets an object's pixels: a public bucket's read path (thumbnails are its
// on-the-fly variants, `key!/fw/256`), or for a private bucket the authorised /v1 content
// endpoint, fetched with the key and shown from a blob: URL (never a key in a URL).

import { api, publicUrl } from './api.js';

const PRIVATE_THUMB_LIMIT = 5 * 1024 * 1024;
const PRIVATE_PREVIEW_LIMIT = 200 * 1024 * 1024;

export function isPrivate(ctx) {
  const info = ctx.buckets.find((b) => b.name === ctx.bucket);
  return Boolean(info && info.settings && info.settings.public === false);
}

/** Blob URLs made for one view, released together when it goes. */
export class BlobUrls {
  constructor() {
    this.urls = [];
  }

  async of(bucket, key) {
    const url = URL.createObjectURL(await api.content(bucket, key));
    this.urls.push(url);
    return url;
  }

  release() {
    this.urls.forEach((url) => URL.revokeObjectURL(url));
    this.urls = [];
  }
}

/**
 * Point `el` (an img or video) at the object: the public URL (with `spec` for a variant), or a
 * blob from /v1 for a private bucket. Returns false when a private object is too large to fetch
 * whole for this purpose.
 */
export function show(el, ctx, obj, blobs, { spec = '', thumbnail = false } = {}) {
  if (!isPrivate(ctx)) {
    el.src = publicUrl(ctx.bucket, obj.key, spec);
    return true;
  }
  if (obj.size > (thumbnail ? PRIVATE_THUMB_LIMIT : PRIVATE_PREVIEW_LIMIT)) return false;
  blobs
    .of(ctx.bucket, obj.key)
    .then((url) => {
      el.src = url;
    })
    .catch(() => el.dispatchEvent(new Event('error')));
  return true;
}
