package server

import (
	"io/fs"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/swaggest/swgui"
	"github.com/swaggest/swgui/v5/static"
	"github.com/swaggest/swgui/v5emb"

	"github.com/opencrm/crm/gen"
)

// The routes outside the API proper that document it: the spec in both forms,
// and Swagger UI from assets built into the binary, so that /docs works offline
// and on the same origin as the API it tries out.

// docsCSP lets Swagger UI's own page run (its bootstrap script is inline) while
// keeping it to this origin.
const docsCSP = "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'"

func registerDocs(e *echo.Echo, specJSON []byte) {
	e.GET("/openapi.yaml", func(c echo.Context) error {
		return c.Blob(http.StatusOK, "application/yaml", gen.SpecYAML)
	})
	e.GET("/openapi.json", func(c echo.Context) error {
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, specJSON)
	})

	ui := echo.WrapHandler(v5emb.NewHandlerWithConfig(swgui.Config{
		Title:       "CRM API",
		SwaggerJSON: "/openapi.json",
		BasePath:    "/docs/",
		SettingsUI: map[string]string{
			// The token from the Authorize dialog survives a reload.
			"persistAuthorization": "true",
			// "Try it out" is what people come for.
			"tryItOutEnabled":        "true",
			"displayRequestDuration": "true",
		},
	}))
	serve := func(c echo.Context) error {
		// An asset that is not there is a 404 problem like any other, not the
		// file server's plain-text page.
		if asset := strings.TrimPrefix(c.Request().URL.Path, "/docs/"); asset != c.Request().URL.Path && asset != "" && !isDocsAsset(asset) {
			return echo.ErrNotFound
		}
		c.Response().Header().Set("Content-Security-Policy", docsCSP)
		return ui(c)
	}
	e.GET("/docs", serve)
	e.GET("/docs/*", serve)
	// Someone who opens the server's address in a browser finds the docs.
	e.GET("/", func(c echo.Context) error {
		return c.Redirect(http.StatusFound, "/docs")
	})
}

// isDocsAsset reports whether Swagger UI's embedded assets hold name (stored
// gzipped, or as it is). The OAuth 2.0 redirect page is left out: only the
// authorization code and implicit flows return to it, and the spec's sign-in
// is the password flow (the page would also load a script that is not there).
func isDocsAsset(name string) bool {
	if name == "oauth2-redirect.html" {
		return false
	}
	for _, candidate := range []string{name, name + ".gz"} {
		if _, err := fs.Stat(static.FS, candidate); err == nil {
			return true
		}
	}
	return false
}

// isDocsRoute reports routes that serve Swagger UI, which need a looser
// Content-Security-Policy than the API's "nothing at all".
func isDocsRoute(route string) bool {
	return strings.HasPrefix(route, "/docs")
}
