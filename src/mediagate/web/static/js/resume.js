// What lets an unfinished upload continue after a page reload: tus-js-client's record of the
// upload's URL (by fingerprint) and the upload token that authorises it, both in sessionStorage,
// so they live exactly as long as the API key (the tab; logging out clears them, see api.js).
// Never localStorage (it outlives the tab), never a URL (the token goes in Authorization only).
// Both are namespaced by bucket and folder: the same file added in another folder is a new upload.

import { UPLOAD_STATE } from './api.js';

const [TUS, TOKEN] = UPLOAD_STATE;

function entries(prefix) {
  const found = [];
  for (let i = 0; i < sessionStorage.length; i += 1) {
    const name = sessionStorage.key(i);
    if (!name || !name.startsWith(prefix)) continue;
    try {
      found.push({ ...JSON.parse(sessionStorage.getItem(name)), urlStorageKey: name });
    } catch {
      sessionStorage.removeItem(name); // not ours to read: drop it
    }
  }
  return found;
}

/** tus-js-client's UrlStorage interface, over sessionStorage, for one bucket and folder. */
export class SessionUrlStorage {
  constructor(bucket, prefix) {
    this.base = `${TUS}${bucket}:${prefix}::`;
  }

  findAllUploads() {
    return Promise.resolve(entries(this.base));
  }

  findUploadsByFingerprint(fingerprint) {
    return Promise.resolve(entries(`${this.base}${fingerprint}::`));
  }

  removeUpload(urlStorageKey) {
    sessionStorage.removeItem(urlStorageKey);
    return Promise.resolve();
  }

  addUpload(fingerprint, upload) {
    const name = `${this.base}${fingerprint}::${crypto.getRandomValues(new Uint32Array(1))[0]}`;
    sessionStorage.setItem(name, JSON.stringify(upload));
    return Promise.resolve(name);
  }
}

/** The upload token of each file being uploaded into one bucket and folder (by Uppy's file id,
 * which is the same when the same file is added again), kept until its upload completes. */
export class UploadTokens {
  constructor(bucket, prefix) {
    this.base = `${TOKEN}${bucket}:${prefix}::`;
  }

  get(fileId) {
    return sessionStorage.getItem(`${this.base}${fileId}`);
  }

  set(fileId, token) {
    sessionStorage.setItem(`${this.base}${fileId}`, token);
  }

  forget(fileId) {
    sessionStorage.removeItem(`${this.base}${fileId}`);
  }
}
