package server

import (
	"embed"
	"io/fs"
	"net/http"
)

// The dashboard is static: a page and a script that read the API with the
// API token the user types in. The files hold no data, so they are served
// without the token.
//
//go:embed dashboard
var dashboardFiles embed.FS

func handleDashboard() http.Handler {
	sub, _ := fs.Sub(dashboardFiles, "dashboard")
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The page loads its own script and style only, and talks to its
		// own origin only.
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		if r.URL.Path == "/" {
			http.ServeFileFS(w, r, sub, "index.html")
			return
		}
		http.StripPrefix("/dashboard", files).ServeHTTP(w, r)
	})
}
