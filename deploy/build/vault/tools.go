//go:build tools

// Package vaultbuild pins the Vault server version built by `make vault`.
package vaultbuild

import _ "github.com/hashicorp/vault"
