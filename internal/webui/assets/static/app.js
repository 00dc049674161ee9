// polyroot's login and enrolment pages: a PIN pad driving the polyroot client compiled
// to WebAssembly (globalThis.polyroot, after wasm_exec.js and polyroot.wasm load).
// The PIN lives only in the pad's variable until it is handed to the client, and is
// dropped (and the dots cleared) right after; it is never put in the DOM.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const origin = location.origin;
  const page = document.body.dataset.page;
  const minPIN = Math.max(1, parseInt(document.body.dataset.minPin, 10) || 4);
  const maxPIN = 32;
  const meta = (name) => {
    const m = document.querySelector(`meta[name="${name}"]`);
    return m ? m.content : '';
  };

  // ---- screens and the live region ----

  let current = '';
  function show(id) {
    for (const s of document.querySelectorAll('main > section')) s.hidden = s.id !== id;
    current = id;
    const h = $(id) && $(id).querySelector('h2');
    if (h) h.focus({ preventScroll: true });
  }
  function say(text) { $('status').textContent = text; }

  const kinds = new Set(Array.from(document.querySelectorAll('section[data-kind]'), (s) => s.dataset.kind));
  // fail shows the screen of an error from the client (Error.kind) or of any other error.
  function fail(err) {
    const kind = err && typeof err.kind === 'string' && kinds.has(err.kind) ? err.kind : 'internal';
    if (kind === 'wrong_pin') {
      const left = Number.isInteger(err.triesLeft) && err.triesLeft >= 0 ? err.triesLeft : null;
      $('tries-left-text').hidden = left === null;
      if (left !== null) {
        $('tries-left').textContent = String(left);
        $('tries-left-word').textContent = left === 1 ? 'try' : 'tries';
      }
    }
    if (kind === 'internal') {
      $('error-message').textContent = err && err.message ? err.message : String(err);
    }
    const section = document.querySelector(`section[data-kind="${kind}"]`);
    say(section.querySelector('h2').textContent);
    show(section.id);
  }

  // ---- the PIN pad ----

  const pad = {
    digits: [],
    busy: false,
    onSubmit: null,
    render() {
      const n = this.digits.length;
      $('pin-display').textContent = '\u25CF'.repeat(n);
      $('pin-display').setAttribute('aria-label', n === 0 ? 'no digits entered' : n === 1 ? '1 digit entered' : `${n} digits entered`);
      $('pad-submit').disabled = this.busy || n < minPIN;
      for (const b of document.querySelectorAll('#pinpad button')) {
        if (b.id !== 'pad-submit') b.disabled = this.busy;
      }
    },
    press(d) {
      if (this.busy || this.digits.length >= maxPIN) return;
      this.digits.push(d);
      this.render();
    },
    back() { if (!this.busy) { this.digits.pop(); this.render(); } },
    clear() { if (!this.busy) { this.digits.length = 0; this.render(); } },
    // take hands out the PIN and forgets it: the digits are overwritten and the display reset.
    take() {
      const pin = this.digits.join('');
      this.digits.fill('');
      this.digits.length = 0;
      this.render();
      return pin;
    },
    submit() {
      if (this.busy || this.digits.length < minPIN || !this.onSubmit) return;
      this.onSubmit(this.take());
    },
    setBusy(b) { this.busy = b; this.render(); },
    prompt(text) { $('pad-prompt').textContent = text; },
    visible() { const s = $('pinpad'); return s && !s.closest('section').hidden; },
  };

  function wirePad() {
    if (!$('pinpad')) return;
    for (const b of document.querySelectorAll('#pinpad button[data-digit]')) {
      b.addEventListener('click', () => pad.press(b.dataset.digit));
    }
    $('pad-back').addEventListener('click', () => pad.back());
    $('pad-clear').addEventListener('click', () => pad.clear());
    $('pad-submit').addEventListener('click', () => pad.submit());
    document.addEventListener('keydown', (e) => {
      if (!pad.visible() || e.ctrlKey || e.metaKey || e.altKey) return;
      if (e.target instanceof HTMLInputElement) return;
      if (/^[0-9]$/.test(e.key)) pad.press(e.key);
      else if (e.key === 'Backspace') pad.back();
      else if (e.key === 'Escape' || e.key === 'Delete') pad.clear();
      else if (e.key === 'Enter') pad.submit();
      else return;
      e.preventDefault();
    });
    pad.render();
  }

  // ---- the WebAssembly client ----

  async function loadClient() {
    const url = meta('polyroot-wasm-url');
    const integrity = meta('polyroot-wasm-integrity');
    if (!url || typeof globalThis.Go !== 'function') {
      const e = new Error('the browser client is not installed on this server');
      e.kind = 'unavailable';
      throw e;
    }
    const go = new globalThis.Go();
    const resp = fetch(url, { integrity, credentials: 'same-origin', cache: 'no-cache' });
    const { instance } = await WebAssembly.instantiateStreaming(resp, go.importObject);
    const exited = go.run(instance);
    for (let i = 0; i < 200 && !globalThis.polyroot; i++) {
      await Promise.race([exited, new Promise((r) => setTimeout(r, 25))]);
    }
    if (!globalThis.polyroot) throw new Error('the browser client did not start');
    return globalThis.polyroot;
  }

  function retryTo(fn) {
    for (const b of document.querySelectorAll('section.error button.retry')) {
      b.onclick = fn;
    }
  }

  // ---- the login page ----

  async function complete(authRequestID, accessToken) {
    const resp = await fetch(meta('polyroot-complete-url') || '/login/complete', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ auth_request_id: authRequestID, access_token: accessToken }),
    });
    let body = {};
    try { body = await resp.json(); } catch (_) { /* not JSON */ }
    if (!resp.ok || typeof body.redirect !== 'string') {
      const e = new Error(body.message || body.code || body.error || `the server answered ${resp.status}`);
      e.kind = 'internal';
      throw e;
    }
    return body.redirect;
  }

  async function loginPage(client) {
    const authRequestID = new URLSearchParams(location.search).get('authRequestID') || '';
    const st = await client.status(origin);
    if (!st || !st.enrolled) throw Object.assign(new Error('not enrolled'), { kind: 'not_enrolled' });
    $('login-id').textContent = st.id;
    const toPad = () => { pad.setBusy(false); pad.clear(); pad.prompt('Enter your PIN'); show('screen-pin'); say(''); };
    retryTo(toPad);
    pad.onSubmit = async (pin) => {
      pad.setBusy(true);
      say('Logging in…');
      let res;
      try {
        res = await client.login(origin, pin, authRequestID);
      } catch (e) {
        pad.setBusy(false);
        fail(e);
        return;
      } finally {
        pin = null;
      }
      // The client renews the permits in the background after a login when they run
      // low (with the fresh access token), so the page has nothing to do for them.
      if (authRequestID) {
        show('screen-redirecting');
        say('Logged in; returning to the application');
        try {
          location.assign(await complete(authRequestID, res.accessToken));
        } catch (e) {
          fail(e);
        }
        return;
      }
      $('logged-in-id').textContent = res.id;
      const until = Date.parse(st.permitsUntil || '');
      $('permits-note').textContent = Number.isFinite(until) ? `Time permits until ${new Date(until).toLocaleString()}.` : '';
      show('screen-logged-in');
      say(`Logged in as ${res.id}`);
    };
    toPad();
  }

  // ---- the enrolment page ----

  async function enrolPage(client) {
    // The code and the bundle fingerprint come in the fragment, which no server sees;
    // it is taken off the address bar at once.
    const frag = new URLSearchParams(location.hash.replace(/^#/, ''));
    let code = frag.get('code') || '';
    const fingerprint = frag.get('fp') || '';
    if (location.hash) history.replaceState(null, '', location.pathname + location.search);
    let first = null;
    // A link with someone else's code must not swap the identity this browser holds
    // without the user saying so (and the old one is lost: only the registrar can
    // issue it again).
    let held = '';
    try {
      const st = await client.status(origin);
      if (st && st.enrolled) held = st.id;
    } catch (e) { /* nothing readable is held */ }

    const toCode = () => { $('code').value = code; show('screen-code'); say(''); $('code').focus(); };
    const toPIN = () => {
      first = null;
      pad.setBusy(false);
      pad.clear();
      pad.prompt('Choose a PIN');
      show('screen-new-pin');
    };
    const toPINOrConfirm = () => {
      if (!held) { toPIN(); return; }
      $('replace-id').textContent = held;
      show('screen-replace');
      say(`This browser holds ${held}; enrolling replaces it`);
    };
    $('replace-yes').addEventListener('click', () => { held = ''; toPIN(); });
    retryTo(() => { code = ''; toCode(); });
    $('code-form').addEventListener('submit', (e) => {
      e.preventDefault();
      code = $('code').value.trim();
      $('code').value = '';
      if (code) toPINOrConfirm();
    });
    pad.onSubmit = async (pin) => {
      if (first === null) {
        first = pin;
        pad.prompt('Enter the same PIN again');
        say('Enter the same PIN again');
        return;
      }
      const same = first === pin;
      first = null;
      if (!same) {
        pin = null;
        pad.prompt('The PINs differ. Choose a PIN');
        say('The PINs differ. Choose a PIN again');
        return;
      }
      pad.setBusy(true);
      show('screen-enrolling');
      say('Enrolling…');
      let res;
      try {
        res = await client.enrol(origin, code, pin, fingerprint);
      } catch (e) {
        fail(e);
        return;
      } finally {
        pin = null;
        pad.setBusy(false);
      }
      code = '';
      $('enrolled-id').textContent = res.id;
      show('screen-enrolled');
      say(`Enrolled as ${res.id}`);
    };
    if (code) toPINOrConfirm(); else toCode();
  }

  async function main() {
    wirePad();
    if (!meta('polyroot-wasm-url')) return; // the server says the client is not installed
    if (!globalThis.isSecureContext || !globalThis.crypto || !crypto.subtle || !globalThis.indexedDB) {
      fail(new Error('this page needs a secure (https) connection and a browser with WebCrypto and IndexedDB'));
      return;
    }
    let client;
    try {
      client = await loadClient();
    } catch (e) {
      if (e && e.kind === 'unavailable') { show('screen-unavailable'); return; }
      fail(e);
      return;
    }
    try {
      if (page === 'enrol') await enrolPage(client);
      else await loginPage(client);
    } catch (e) {
      fail(e);
    }
  }

  main();
})();
