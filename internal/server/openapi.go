package server

import (
	_ "embed"
	"net/http"
)

// openAPIDocument is the OpenAPI document of kycd's HTTP API, kept in the
// repository beside the handlers it describes.
//
//go:embed openapi.json
var openAPIDocument []byte

// handleOpenAPI serves the OpenAPI document. It needs no token: the document
// describes the API, it reveals nothing kept behind it.
func handleOpenAPI() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		writeBody(w, openAPIDocument)
	})
}
