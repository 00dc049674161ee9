//go:build !js

package ticket

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// jwtClaims are the claims of a ticket as golang-jwt signs and decodes them.
type jwtClaims struct {
	Kind      string `json:"kind"`
	FirstSlot uint64 `json:"first_slot,omitempty"`
	LastSlot  uint64 `json:"last_slot,omitempty"`
	SealKey   string `json:"seal_key,omitempty"`
	jwt.RegisteredClaims
}

// Sign returns the ticket as a compact JWT signed with the registrar's key. A zero
// Nonce is filled with a fresh random one.
func Sign(t Ticket, registrar ed25519.PrivateKey) (string, error) {
	if t.Nonce == "" {
		var n [16]byte
		if _, err := rand.Read(n[:]); err != nil {
			return "", err
		}
		t.Nonce = hex.EncodeToString(n[:])
	}
	if err := t.validate(); err != nil {
		return "", err
	}
	c := jwtClaims{Kind: t.Kind, FirstSlot: t.FirstSlot, LastSlot: t.LastSlot, SealKey: t.SealKey,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   t.IDHash,
			Audience:  jwt.ClaimStrings{t.Domain},
			ExpiresAt: jwt.NewNumericDate(t.NotAfter),
			ID:        t.Nonce,
		}}
	return jwt.NewWithClaims(jwt.SigningMethodEdDSA, c).SignedString(registrar)
}

// verifyJWT checks the signature, the algorithm and the times of a ticket with
// golang-jwt and returns its claims. Its decoding is strict, as verifyCompact's: a
// non-zero trailing bit would give one ticket several strings (see base64urlParts).
func verifyJWT(token string, registrar ed25519.PublicKey, now time.Time) (*claims, error) {
	var c jwtClaims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return registrar, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithStrictDecoding(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, ErrExpired
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return &claims{Kind: c.Kind, FirstSlot: c.FirstSlot, LastSlot: c.LastSlot, SealKey: c.SealKey,
		Issuer: c.Issuer, Subject: c.Subject, Audience: c.Audience, ExpiresAt: c.ExpiresAt.Time, ID: c.ID}, nil
}
