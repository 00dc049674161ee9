package browsertest

import (
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// enrolTimeout bounds a browser enrolment: the WebAssembly client fetches and
// checks shares from every DTA, on a shared two-core machine.
const enrolTimeout = 3 * time.Minute

// loginTimeout bounds a browser login.
const loginTimeout = 2 * time.Minute

// enrolInBrowser enrols id in b's profile through the enrolment page: the code (and
// the bundle fingerprint) in the link's fragment, the PIN chosen twice on the pad.
func enrolInBrowser(t *testing.T, b *browser, st *Stack, id, pin string) {
	t.Helper()
	code := st.Enrolment(t, id)
	frag := url.Values{"code": {code}, "fp": {st.Domain.Fingerprint}}.Encode()
	b.navigate(st.URL + "/login/enrol#" + frag)
	b.waitScreen("screen-new-pin", time.Minute)
	if loc := eval[string](b, 10*time.Second, `location.href`); strings.Contains(loc, code) {
		t.Errorf("the enrolment code stays in the address bar: %s", loc)
	}
	b.clickPIN(pin)
	if got := eval[string](b, 10*time.Second, `document.getElementById('pad-prompt').textContent`); !strings.Contains(got, "again") {
		t.Fatalf("after the first PIN the pad says %q, want it to ask again", got)
	}
	b.clickPIN(pin)
	s := b.waitScreen("screen-enrolled", enrolTimeout)
	if !strings.Contains(s.Text, id) {
		t.Fatalf("the enrolled screen does not name %s: %q", id, s.Text)
	}
}

// openLogin opens the login page and waits for the PIN pad.
func openLogin(t *testing.T, b *browser, st *Stack) {
	t.Helper()
	b.navigate(st.URL + "/login")
	b.waitScreen("screen-pin", time.Minute)
}

// pinLeakJS lists the places of the page that hold s: element values and
// attributes, text, the address, web storage.
const pinLeakJS = `((s) => {
  const found = [];
  for (const el of document.querySelectorAll('*')) {
    if ('value' in el && typeof el.value === 'string' && el.value.includes(s)) found.push(el.tagName + '#' + el.id + '.value');
    for (const a of el.attributes) if (a.value.includes(s)) found.push(el.tagName + '#' + el.id + '@' + a.name);
  }
  if (document.body.innerText.replace(/\s+/g, '').includes(s)) found.push('body text');
  if (document.documentElement.outerHTML.includes(s)) found.push('HTML');
  if (location.href.includes(s)) found.push('location');
  for (const st of [localStorage, sessionStorage]) for (let i = 0; i < st.length; i++) {
    const k = st.key(i);
    if (k.includes(s) || (st.getItem(k) || '').includes(s)) found.push('web storage ' + k);
  }
  return found;
})`

// checkNoPIN fails the test if pin is anywhere in the page, or the pad still shows digits.
func checkNoPIN(t *testing.T, b *browser, pin string) {
	t.Helper()
	if found := eval[[]string](b, 10*time.Second, pinLeakJS+`(`+jsString(pin)+`)`); len(found) > 0 {
		t.Errorf("the PIN is in the page after use: %v", found)
	}
	if dots := eval[string](b, 10*time.Second, `document.getElementById('pin-display').textContent`); dots != "" {
		t.Errorf("the PIN display still shows %q after use", dots)
	}
}

// storeJS describes the page's IndexedDB: each stored value's IV length and whether
// its ciphertext contains s, and the wrapping key's properties.
const storeJS = `(async (s) => {
  const db = await new Promise((res, rej) => { const r = indexedDB.open('polyroot'); r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
  const all = (name) => new Promise((res, rej) => {
    const t = db.transaction(name, 'readonly'); const st = t.objectStore(name);
    const keys = st.getAllKeys(), vals = st.getAll();
    t.oncomplete = () => res(keys.result.map((k, i) => [k, vals.result[i]])); t.onerror = () => rej(t.error);
  });
  const needle = new TextEncoder().encode(s);
  const has = (b) => { outer: for (let i = 0; i + needle.length <= b.length; i++) { for (let j = 0; j < needle.length; j++) if (b[i + j] !== needle[j]) continue outer; return true; } return false; };
  const values = (await all('values')).map(([k, v]) => ({name: k, ivLen: v.iv.length, ctLen: v.ct.length, plain: has(new Uint8Array(v.ct))}));
  const keys = (await all('keys')).map(([k, v]) => ({name: k, type: Object.prototype.toString.call(v), extractable: v.extractable, alg: v.algorithm.name}));
  db.close();
  return {values, keys};
})`

type storeReport struct {
	Values []struct {
		Name  string `json:"name"`
		IVLen int    `json:"ivLen"`
		CTLen int    `json:"ctLen"`
		Plain bool   `json:"plain"`
	} `json:"values"`
	Keys []struct {
		Name        string `json:"name"`
		Type        string `json:"type"`
		Extractable bool   `json:"extractable"`
		Alg         string `json:"alg"`
	} `json:"keys"`
}

// checkStore checks that the client's files are in IndexedDB encrypted under one
// non-extractable AES-GCM key, none with id in the clear.
func checkStore(t *testing.T, b *browser, id string) {
	t.Helper()
	r := eval[storeReport](b, 20*time.Second, storeJS+`(`+jsString(id)+`)`)
	if len(r.Keys) != 1 || r.Keys[0].Type != "[object CryptoKey]" || r.Keys[0].Extractable || r.Keys[0].Alg != "AES-GCM" {
		t.Errorf("the store's wrapping key: %+v, want one non-extractable AES-GCM CryptoKey", r.Keys)
	}
	if len(r.Values) == 0 {
		t.Error("the client stored nothing in IndexedDB")
	}
	for _, v := range r.Values {
		if v.IVLen != 12 || v.CTLen < 16 || v.Plain {
			t.Errorf("stored value %s: IV %d bytes, ciphertext %d bytes, identity in the clear: %v", v.Name, v.IVLen, v.CTLen, v.Plain)
		}
	}
	t.Logf("IndexedDB holds %d encrypted values: %v", len(r.Values), func() (n []string) {
		for _, v := range r.Values {
			n = append(n, v.Name)
		}
		return n
	}())
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`).Replace(s) + "'"
}

func TestBrowserEnrolAndLogin(t *testing.T) {
	st := StartStack(t)
	b := newBrowser(t)
	const id, pin = "alice@browser.example.test", "493817"
	enrolInBrowser(t, b, st, id, pin)
	checkNoPIN(t, b, pin)

	openLogin(t, b, st)
	if got := eval[string](b, 10*time.Second, `document.getElementById('login-id').textContent`); got != id {
		t.Errorf("the login page names %q, want %q", got, id)
	}
	// Two digits by pointer for the screenshot, cleared, then the PIN from the keyboard.
	b.do(10*time.Second, chromedp.Click(chromedp.CSS(`#pinpad button[data-digit="1"]`)), chromedp.Click(chromedp.CSS(`#pinpad button[data-digit="2"]`)))
	b.screenshot("pinpad")
	b.do(10*time.Second, chromedp.Click(chromedp.ID("pad-clear")))
	b.typePIN(pin)
	s := b.waitScreen("screen-logged-in", loginTimeout)
	if got := eval[string](b, 10*time.Second, `document.getElementById('logged-in-id').textContent`); got != id {
		t.Errorf("logged in as %q, want %q (screen: %q)", got, id, s.Text)
	}
	b.screenshot("logged-in")
	checkNoPIN(t, b, pin)
	checkStore(t, b, id)

	measureLogin(t, b, st, pin)
}

// enrolTyped enrols id in b's profile with the code typed into the enrolment page's
// form (no link), after a wrong code, which the page refuses.
func enrolTyped(t *testing.T, b *browser, st *Stack, id, pin string) {
	t.Helper()
	code := st.Enrolment(t, id)
	b.navigate(st.URL + "/login/enrol")
	b.waitScreen("screen-code", time.Minute)
	b.do(30*time.Second, chromedp.SendKeys(chromedp.ID("code"), "not-a-code-0000"), chromedp.Click(chromedp.CSS(`#code-form button[type="submit"]`)))
	b.waitScreen("screen-new-pin", 10*time.Second)
	b.clickPIN(pin)
	b.clickPIN(pin)
	b.waitScreen("screen-bad-code", enrolTimeout)
	b.do(10*time.Second, chromedp.Click(chromedp.CSS(`#screen-bad-code button.retry`)))
	b.waitScreen("screen-code", 10*time.Second)
	if v := eval[string](b, 10*time.Second, `document.getElementById('code').value`); v != "" {
		t.Errorf("after a refused code the field holds %q", v)
	}
	b.do(30*time.Second, chromedp.SendKeys(chromedp.ID("code"), code), chromedp.Click(chromedp.CSS(`#code-form button[type="submit"]`)))
	b.waitScreen("screen-new-pin", 10*time.Second)
	if v := eval[string](b, 10*time.Second, `document.getElementById('code').value`); v != "" {
		t.Errorf("the code stays in the field after it was taken: %q", v)
	}
	b.clickPIN(pin)
	b.clickPIN(pin)
	if s := b.waitScreen("screen-enrolled", enrolTimeout); !strings.Contains(s.Text, id) {
		t.Fatalf("the enrolled screen does not name %s: %q", id, s.Text)
	}
}

func TestBrowserWrongPINBlocks(t *testing.T) {
	st := StartStack(t)
	b := newBrowser(t)
	const id, pin, wrong = "bob@browser.example.test", "271828", "314159"
	// A fresh profile holds no identity.
	b.navigate(st.URL + "/login")
	b.waitScreen("screen-not-enrolled", time.Minute)
	enrolTyped(t, b, st, id, pin)
	openLogin(t, b, st)
	max := st.Config.MaxFailures
	if max == 0 {
		max = 3
	}
	for try := 1; try < max; try++ {
		b.typePIN(wrong)
		b.waitScreen("screen-wrong-pin", loginTimeout)
		left := eval[string](b, 10*time.Second, `document.getElementById('tries-left').textContent`)
		if want := max - try; left != strconv.Itoa(want) {
			t.Errorf("wrong PIN %d of %d: the page says %q tries left, want %d", try, max, left, want)
		}
		if try == 1 {
			b.screenshot("wrong-pin")
		}
		checkNoPIN(t, b, wrong)
		b.do(10*time.Second, chromedp.Click(chromedp.CSS(`#screen-wrong-pin button.retry`)))
		b.waitScreen("screen-pin", 10*time.Second)
	}
	// The last wrong PIN blocks the identity; the right PIN cannot undo it.
	b.typePIN(wrong)
	b.waitScreen("screen-blocked", loginTimeout)
	b.screenshot("blocked")
	openLogin(t, b, st)
	b.typePIN(pin)
	b.waitScreen("screen-blocked", loginTimeout)
	checkNoPIN(t, b, pin)

	// An enrolment link with someone else's code asks before it replaces the identity
	// this browser holds; keeping it keeps it.
	frag := url.Values{"code": {st.Enrolment(t, "mallory@browser.example.test")}}.Encode()
	b.navigate(st.URL + "/login/enrol#" + frag)
	if s := b.waitScreen("screen-replace", time.Minute); !strings.Contains(s.Text, id) {
		t.Fatalf("the replace screen does not name %s: %q", id, s.Text)
	}
	b.do(10*time.Second, chromedp.Click(chromedp.ID("replace-no")))
	b.waitScreen("screen-pin", time.Minute)
	if got := eval[string](b, 10*time.Second, `document.getElementById('login-id').textContent`); got != id {
		t.Fatalf("after keeping the identity the login page is for %q, want %q", got, id)
	}
}

func TestBrowserImpostorServer(t *testing.T) {
	st := StartStack(t)
	b := newBrowser(t)
	const id, pin = "carol@browser.example.test", "602214"
	enrolInBrowser(t, b, st, id, pin)
	// From now on the page's origin sends the login to an impostor: it serves this
	// domain's name with another domain's sQ (the bundle, pages and DTAs are the real
	// ones, so the client goes as far as the key confirmation).
	im := startImpostor(t, st.Domain.Name, st.Domain.PermitPeriod)
	target, _ := url.Parse(im.URL)
	st.RouteLogin(httputil.NewSingleHostReverseProxy(target))
	openLogin(t, b, st)
	b.typePIN(pin)
	b.waitScreen("screen-not-authentic", loginTimeout)
	b.screenshot("not-authentic")
	if im.starts.Load() == 0 || im.finishs.Load() == 0 {
		t.Fatalf("the impostor saw %d pass 1 and %d pass 2: the client stopped before the key confirmation", im.starts.Load(), im.finishs.Load())
	}
	if found := eval[[]string](b, 10*time.Second, pinLeakJS+`(`+jsString(impostorToken)+`)`); len(found) > 0 {
		t.Errorf("the impostor's access token is in the page: %v", found)
	}
	if shown := eval[bool](b, 10*time.Second, `!document.getElementById('screen-logged-in').hidden || !document.getElementById('screen-redirecting').hidden`); shown {
		t.Error("the page shows a login after the impostor's answer")
	}
	checkNoPIN(t, b, pin)

	// Back to the real server: the same enrolment logs in.
	st.RouteLogin(nil)
	openLogin(t, b, st)
	b.typePIN(pin)
	b.waitScreen("screen-logged-in", loginTimeout)
}
