// This module only builds a pinned HashiCorp Vault server for the integration tests
// (make vault). It is separate so Vault's dependency graph never enters polyroot's.
module github.com/polyroot/polyroot/deploy/build/vault

go 1.26.8

require github.com/hashicorp/vault v1.21.0

// The two replace directives of Vault's own go.mod that point at published modules.
replace (
	github.com/99designs/keyring => github.com/Jeffail/keyring v1.2.3
	github.com/ma314smith/signedxml v1.1.1 => github.com/moov-io/signedxml v1.1.1
)
