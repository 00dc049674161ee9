package oidcop

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// The records the provider reads back from the Store that replicas share (a database
// that anyone who can write it, or a replica of another version, may have filled):
// the login that completed an auth request (done/), a code's request (code/), an
// access token (at/) and the last logout of a subject at a client (logout/). Each
// fuzz test puts the fuzzed bytes where the provider reads them.

// farFuture is the expiry of the records the fuzz tests put: live whenever read.
var farFuture = time.Now().Add(24 * time.Hour)

// reencode fails t unless v encodes, and what it encodes to decodes into a fresh T
// that encodes to the same bytes: a record the provider read is one it can write
// again unchanged. It returns the encoding.
func reencode[T any](t *testing.T, v *T) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("a record read from the store does not encode: %v", err)
	}
	var again T
	if err := json.Unmarshal(b, &again); err != nil {
		t.Fatalf("a record read from the store encodes to %s, which does not decode: %v", b, err)
	}
	if b2, err := json.Marshal(&again); err != nil || !bytes.Equal(b, b2) {
		t.Fatalf("a record read from the store changed on a round trip:\n%s\n%s (%v)", b, b2, err)
	}
	return b
}

// FuzzStoredLogin: whatever the store holds as the login that completed an auth
// request, reading the request refuses it or gives a completed request (its ID, the
// login's subject) whose login encodes again to the same; a code then issued for it
// carries that same login.
func FuzzStoredLogin(f *testing.F) {
	p := testProvider(f)
	good, _ := json.Marshal(doneLogin{Subject: "alice", AMR: []string{"mpin", "pin"}, AuthTime: time.Unix(1_800_000_000, 5)})
	f.Add(good)
	f.Add([]byte(`{"sub":"alice","amr":null,"auth_time":"2027-01-15T08:00:00+05:30"}`))
	f.Add([]byte(`{"sub":1}`))
	f.Add([]byte(`{"auth_time":"0000-01-01T00:00:00Z"}`))
	f.Add([]byte(`null`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, rec []byte) {
		id, cookie := p.newAuthRequest(t)
		if err := p.cfg.Store.PutOIDC(keyDone+id, rec, farFuture); err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest("GET", "/oidc/authorize/callback", nil)
		r.AddCookie(cookie)
		a, err := p.storage.authRequest(r, id)
		if err != nil {
			if a != nil {
				t.Fatal("an error and a request")
			}
			return
		}
		if a.ID != id || !a.Done() || a.GetSubject() != a.login.Subject {
			t.Fatalf("read %+v for request %s", a, id)
		}
		b := reencode(t, a.login)
		// The code's record carries the same login.
		ctx := context.WithValue(context.Background(), browserRequestKey{}, r)
		code := "code-" + id
		if err := p.storage.SaveAuthCode(ctx, id, code); err != nil {
			t.Fatalf("no code for a completed request: %v", err)
		}
		got, err := p.storage.AuthRequestByCode(ctx, code)
		if err != nil {
			t.Fatalf("the code's record of a completed request does not read: %v", err)
		}
		if b2, _ := json.Marshal(got.(*authRequest).login); !bytes.Equal(b, b2) {
			t.Fatalf("the login changed from its record to the code's:\n%s\n%s", b, b2)
		}
	})
}

// pkceS256 is the S256 code challenge of verifier.
func pkceS256(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// FuzzStoredCode: whatever the store holds under a code, AuthRequestByCode refuses it
// or gives a completed request that encodes again to the same record, and the token
// endpoint, redeeming the code, never panics: it makes tokens only for the request's
// client, redirect URI and PKCE verifier, and the access token it stores is the
// login's.
func FuzzStoredCode(f *testing.F) {
	p := testProvider(f)
	const verifier = "fuzz-verifier-fuzz-verifier-fuzz-verifier-0123"
	now := time.Now()
	entry := codeEntry{Request: &authRequest{ID: strings.Repeat("ab", 16), ClientID: "shop", RedirectURI: "https://shop.example/cb",
		Scopes: []string{"openid", "profile"}, Nonce: "n-1", ResponseType: oidc.ResponseTypeCode, CodeChallenge: pkceS256(verifier),
		CodeChallengeMethod: oidc.CodeChallengeMethodS256, Created: now},
		Login: &doneLogin{Subject: "alice", AMR: []string{"mpin"}, AuthTime: now}}
	good, _ := json.Marshal(entry)
	f.Add(good)
	f.Add(bytes.Replace(good, []byte(`"shop"`), []byte(`"other"`), 1))
	f.Add(bytes.Replace(good, []byte(`"S256"`), []byte(`"plain"`), 1))
	f.Add(bytes.Replace(good, []byte(`"scopes":[`), []byte(`"scopes":null,"x":[`), 1))
	f.Add(bytes.Replace(good, []byte(`"login":{`), []byte(`"login":null,"x":{`), 1))
	f.Add([]byte(`{"request":{},"login":{}}`))
	f.Add([]byte(`null`))
	seen := map[string]bool{}
	f.Fuzz(func(t *testing.T, rec []byte) {
		newAccessTokens(p, seen)
		code := "c" + newID()
		if err := p.cfg.Store.PutOIDC(keyCode+code, rec, farFuture); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		got, err := p.storage.AuthRequestByCode(ctx, code)
		if err != nil {
			if got != nil {
				t.Fatal("an error and a request")
			}
		} else {
			a := got.(*authRequest)
			if a.login == nil || !a.Done() || a.code != code {
				t.Fatalf("read %+v for code %s", a, code)
			}
			reencode(t, &codeEntry{Request: a, Login: a.login})
		}
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"https://shop.example/cb"},
			"client_id": {"shop"}, "code_verifier": {verifier}}
		r := httptest.NewRequest("POST", "/oidc/oauth/token", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		p.Handler().ServeHTTP(w, r)
		if w.Code != 200 {
			return
		}
		if err != nil {
			t.Fatalf("tokens for a code whose record does not read: %s", w.Body)
		}
		a := got.(*authRequest)
		if a.ClientID != "shop" || a.RedirectURI != "https://shop.example/cb" || a.CodeChallengeMethod != oidc.CodeChallengeMethodS256 ||
			a.CodeChallenge != pkceS256(verifier) {
			t.Fatalf("tokens for a request of another client, redirect or verifier: %+v", a)
		}
		var resp struct {
			AccessToken string `json:"access_token"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || resp.AccessToken == "" {
			t.Fatalf("a token answer without an access token: %s", w.Body)
		}
		if _, err := p.storage.AuthRequestByCode(ctx, code); err == nil {
			t.Fatal("the code is still there after its tokens were made")
		}
		if tokens := newAccessTokens(p, seen); len(tokens) != 1 || tokens[0].Subject != a.login.Subject || tokens[0].ClientID != "shop" {
			t.Fatalf("stored access tokens %+v for the login %+v", tokens, a.login)
		}
	})
}

// newAccessTokens returns the access tokens in p's store that are not in seen, and
// adds them to it: the one the token endpoint just stored.
func newAccessTokens(p *Provider, seen map[string]bool) []accessToken {
	m := p.cfg.Store.(*memStore)
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []accessToken
	for k, e := range m.m {
		if strings.HasPrefix(k, keyAccessToken) && !seen[k] {
			seen[k] = true
			var t accessToken
			json.Unmarshal(e.v, &t)
			out = append(out, t)
		}
	}
	return out
}

// FuzzStoredAccessToken: whatever the store holds as an access token (and as the last
// logout of its subject at its client), the provider finds it inactive, or active
// with a record that encodes again to the same, issued after any logout it can read;
// userinfo and introspection agree with it.
func FuzzStoredAccessToken(f *testing.F) {
	p := testProvider(f)
	now := time.Now()
	good, _ := json.Marshal(accessToken{Subject: "alice", ClientID: "shop", Scopes: []string{"openid", "profile"}, AMR: []string{"mpin"},
		AuthTime: now.Add(-time.Minute), Issued: now, Expires: now.Add(15 * time.Minute)})
	before, _ := now.Add(-time.Hour).MarshalText()
	after, _ := now.Add(time.Hour).MarshalText()
	f.Add(good, []byte(nil), false)
	f.Add(good, before, true)
	f.Add(good, after, true)
	f.Add(good, []byte("not a time"), true)
	f.Add([]byte(`{"sub":"alice","client_id":"shop","iat":"2027-01-15T08:00:00-23:59"}`), after, true)
	f.Add([]byte(`{"scopes":"openid"}`), []byte(nil), false)
	f.Add([]byte(`null`), []byte(nil), false)
	f.Fuzz(func(t *testing.T, rec, logout []byte, loggedOut bool) {
		id := newID()
		if err := p.cfg.Store.PutOIDC(keyAccessToken+id, rec, farFuture); err != nil {
			t.Fatal(err)
		}
		var stored accessToken
		decodes := json.Unmarshal(rec, &stored) == nil
		if loggedOut && decodes {
			if err := p.cfg.Store.PutOIDC(logoutKey(stored.Subject, stored.ClientID), logout, farFuture); err != nil {
				t.Fatal(err)
			}
			defer p.cfg.Store.TakeOIDC(logoutKey(stored.Subject, stored.ClientID), time.Now())
		}
		ctx := context.Background()
		tok, err := p.storage.token(id)
		var ui oidc.UserInfo
		uiErr := p.storage.SetUserinfoFromToken(ctx, &ui, id, "", "")
		var ir oidc.IntrospectionResponse
		irErr := p.storage.SetIntrospectionFromToken(ctx, &ir, id, "", "shop")
		if err != nil {
			if tok != nil || uiErr == nil || irErr == nil || ir.Active {
				t.Fatalf("an inactive token that userinfo (%v) or introspection (%v, %v) accepts", uiErr, irErr, ir.Active)
			}
			return
		}
		if !decodes {
			t.Fatalf("an active token from a record that does not decode: %q", rec)
		}
		reencode(t, tok)
		var out time.Time
		if loggedOut && out.UnmarshalText(logout) == nil && !tok.Issued.After(out) {
			t.Fatalf("a token issued at %v active after a logout at %v", tok.Issued, out)
		}
		if uiErr != nil || ui.Subject != tok.Subject {
			t.Fatalf("userinfo of an active token: %v, %q", uiErr, ui.Subject)
		}
		if (irErr == nil) != (tok.ClientID == "shop") || irErr == nil && (!ir.Active || ir.Subject != tok.Subject) {
			t.Fatalf("introspection of an active token of client %q: %v, %+v", tok.ClientID, irErr, ir)
		}
		if errors.Is(irErr, ErrNotFound) && ir.Active {
			t.Fatal("an inactive answer marked active")
		}
	})
}
