// Package wasmclient is the polyroot client in a browser page: the package client
// compiled to WebAssembly (GOOS=js GOARCH=wasm, cmd/polyroot-wasm), with its files in
// the page's storage and a JavaScript API for the PIN pad.
//
// Before the module starts, the page defines
//
//	globalThis.polyrootStore = {
//	  get(name) → Promise<Uint8Array|null>,
//	  put(name, Uint8Array) → Promise<void>,
//	}
//
// (IndexedDB, encrypted by the page). Names are the client's file names prefixed with
// the auth server's origin ("https://auth.example:8443/token.json"); a removed file is
// put as an empty array, and an empty array reads as absent.
//
// Register sets globalThis.polyroot to an object whose functions each return a
// Promise:
//
//	status(origin) → {bootstrapped, enrolled, id, domain, currentPermit, permitsUntil}
//	enrol(origin, code, pin, fingerprint) → {id}
//	login(origin, pin[, authRequestID]) → {id, accessToken, expiresAt}
//	refreshPermits(origin, accessToken) → {permitsUntil}
//
// origin is the auth server's origin, e.g. "https://auth.example:8443"; times are RFC
// 3339 ("" for none). enrol pins the bundle from origin+"/v1/bundle" by fingerprint
// (hex SHA-256), or, with an empty fingerprint, trusts the bundle it first fetches from
// origin (trust on first use; an already pinned bundle is kept), then enrols with the
// code, replacing any enrolment of the same origin. login runs the mutual login
// without channel binding (a page cannot see its TLS connection); when the permits
// have expired it renews them once with the same PIN and logs in again, and after a
// login whose permits end within three permit periods it refreshes them in the
// background with the new access token. With authRequestID (the login page of an
// OpenID Provider auth request), the login is made for that request, and only its
// access token completes it (client.Client.LoginForAuthRequest).
//
// A rejection is a JavaScript Error with .kind (see Kind) and, for "wrong_pin",
// .triesLeft (-1 when the server did not say). No message holds the PIN, a token, a
// share or the enrolment code.
package wasmclient
