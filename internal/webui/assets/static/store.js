// polyroot's browser storage: globalThis.polyrootStore { get, put, remove } keeps the client's files (the
// pinned bundle, the token, the permits) in IndexedDB, each value encrypted with
// AES-GCM under a non-extractable WebCrypto key that is made once and kept in the same
// database as a CryptoKey object: the page can use it but no script can read it out.
// Each put draws a fresh 12-byte IV; the value's name is the additional data, so a
// value moved to another name does not decrypt.
'use strict';
(() => {
  const DB = 'polyroot';
  const VALUES = 'values';
  const KEYS = 'keys';
  const KEY_NAME = 'aes-gcm-1';
  const enc = new TextEncoder();

  function request(req) {
    return new Promise((resolve, reject) => {
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }

  let dbPromise = null;
  function db() {
    if (!dbPromise) {
      dbPromise = new Promise((resolve, reject) => {
        const req = indexedDB.open(DB, 1);
        req.onupgradeneeded = () => {
          const d = req.result;
          if (!d.objectStoreNames.contains(VALUES)) d.createObjectStore(VALUES);
          if (!d.objectStoreNames.contains(KEYS)) d.createObjectStore(KEYS);
        };
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
        req.onblocked = () => reject(new Error('polyrootStore: the database is held open by another tab'));
      });
      dbPromise.catch(() => { dbPromise = null; });
    }
    return dbPromise;
  }

  async function tx(storeName, mode, fn) {
    const d = await db();
    const t = d.transaction(storeName, mode);
    const done = new Promise((resolve, reject) => {
      t.oncomplete = () => resolve();
      t.onabort = t.onerror = () => reject(t.error || new Error('polyrootStore: transaction aborted'));
    });
    const result = await request(fn(t.objectStore(storeName)));
    await done;
    return result;
  }

  let keyPromise = null;
  // key returns the wrapping key, made on first use. Two tabs may both make one: add()
  // keeps the first and the other reads it back.
  function key() {
    if (!keyPromise) {
      keyPromise = (async () => {
        const have = await tx(KEYS, 'readonly', s => s.get(KEY_NAME));
        if (have) return have;
        const fresh = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
        try {
          await tx(KEYS, 'readwrite', s => s.add(fresh, KEY_NAME));
          return fresh;
        } catch (e) {
          if (e && e.name === 'ConstraintError') return tx(KEYS, 'readonly', s => s.get(KEY_NAME));
          throw e;
        }
      })();
      keyPromise.catch(() => { keyPromise = null; });
    }
    return keyPromise;
  }

  function checkName(name) {
    if (typeof name !== 'string' || name === '') throw new TypeError('polyrootStore: a name is a non-empty string');
  }

  globalThis.polyrootStore = Object.freeze({
    // get returns the value stored under name, or null.
    async get(name) {
      checkName(name);
      const rec = await tx(VALUES, 'readonly', s => s.get(name));
      if (rec === undefined) return null;
      const plain = await crypto.subtle.decrypt(
        { name: 'AES-GCM', iv: rec.iv, additionalData: enc.encode(name) }, await key(), rec.ct);
      return new Uint8Array(plain);
    },
    // put stores value (a Uint8Array) under name, replacing what was there.
    async put(name, value) {
      checkName(name);
      if (!(value instanceof Uint8Array)) throw new TypeError('polyrootStore: a value is a Uint8Array');
      const iv = crypto.getRandomValues(new Uint8Array(12));
      const ct = await crypto.subtle.encrypt(
        { name: 'AES-GCM', iv, additionalData: enc.encode(name) }, await key(), value);
      await tx(VALUES, 'readwrite', s => s.put({ iv, ct: new Uint8Array(ct) }, name));
    },
    // remove deletes the value stored under name; a missing one is no error.
    async remove(name) {
      checkName(name);
      await tx(VALUES, 'readwrite', s => s.delete(name));
    },
  });
})();
