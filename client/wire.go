package client

import (
	"time"

	"github.com/polyroot/polyroot/internal/translog"
)

// Wire types, mirrored from server/api.go and dta/api.go so that apps and devices that
// embed this package do not link the server or the DTA (bbolt, Vault, Prometheus…).
// wire_test.go checks the DTA types against dta's; the server types are checked only
// by use until server/ is complete.

// dtaRequest is dta.Request.
type dtaRequest struct {
	Ticket string `json:"ticket"`
}

// dtaResponse is dta.Response.
type dtaResponse struct {
	DTA    uint32     `json:"dta"`
	Shares []dtaShare `json:"shares"`
}

// dtaShare is dta.Share (client and permit kinds).
type dtaShare struct {
	Slot    uint64            `json:"slot,omitempty"`
	Share   []byte            `json:"share,omitempty"`
	Proof   []byte            `json:"proof,omitempty"`
	Sealed  []byte            `json:"sealed,omitempty"`
	Entry   []byte            `json:"entry"`
	Promise *translog.Promise `json:"promise"`
}

// apiError is the {code, message} body of every error (internal/httpx), with the
// tries left of a login failure.
type apiError struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	TriesLeft *int   `json:"tries_left,omitempty"`
}

// The auth server's bodies (server/api.go).
type (
	redeemRequest struct {
		Code string `json:"code"`
	}
	enrolPackage struct {
		Domain       string     `json:"domain"`
		ID           string     `json:"id"`
		Salt         []byte     `json:"salt"`
		IDHash       string     `json:"idhash"`
		Device       bool       `json:"device,omitempty"`
		NotAfter     *time.Time `json:"not_after,omitempty"`
		ClientTicket string     `json:"client_ticket"`
		PermitTicket string     `json:"permit_ticket"`
		FirstSlot    uint64     `json:"first_slot"`
		LastSlot     uint64     `json:"last_slot"`
	}
	startRequest struct {
		Pass1 []byte `json:"pass1"`
	}
	startResponse struct {
		Challenge []byte `json:"challenge"`
	}
	finishRequest struct {
		Pass2 []byte `json:"pass2"`
	}
	finishResponse struct {
		Finish      []byte    `json:"finish"`
		ID          string    `json:"id"`
		AccessToken string    `json:"access_token"`
		ExpiresAt   time.Time `json:"expires_at"`
	}
	permitRequest struct {
		Days int `json:"days"`
	}
	permitTicket struct {
		Ticket    string `json:"ticket"`
		FirstSlot uint64 `json:"first_slot"`
		LastSlot  uint64 `json:"last_slot"`
	}
)
