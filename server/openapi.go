package server

import (
	_ "embed"
	"net/http"
)

// openAPI is the OpenAPI document of this API, committed beside the code so that a
// reviewer sees a change to the API in the same diff as the code.
//
//go:embed openapi.yaml
var openAPI []byte

// serveOpenAPI answers GET /v1/openapi.yaml with the committed document, byte for byte.
func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/yaml") // RFC 9512
	w.Write(openAPI)
}
