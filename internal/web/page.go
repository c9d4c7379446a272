package web

import (
	"embed"
	"io/fs"
	"net/http"
)

// assets holds the page (index.html, app.js, style.css, committed) and
// noVNC's ES modules under assets/novnc (copied from web/node_modules by
// `make web`, not committed). Without them the binary still builds and the
// page says that the console assets were not built.
//
//go:embed assets
var assets embed.FS

// openAPIDocument is the API's OpenAPI 3 description.
//
//go:embed openapi.json
var openAPIDocument []byte

// ConsoleAssetsBuilt reports whether noVNC was embedded.
func ConsoleAssetsBuilt() bool {
	_, err := fs.Stat(assets, "assets/novnc/core/rfb.js")
	return err == nil
}

func pageHandler() http.Handler {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err)
	}
	return http.FileServerFS(sub)
}
