package client

// apiError is the {code, message} body of every error the server and the DTAs send
// (internal/httpx), with the tries left of a login failure when there is one.
type apiError struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	TriesLeft *int   `json:"tries_left,omitempty"`
}
