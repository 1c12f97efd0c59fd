package server

import (
	"bytes"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"regexp"
	"slices"
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

func registerDocs(e *echo.Echo, specJSON []byte, trusted []*net.IPNet) error {
	yamlSpec, err := splitAtServer(gen.SpecYAML, "\n  - url: ")
	if err != nil {
		return err
	}
	jsonSpec, err := splitAtServer(specJSON, `"servers":[{"url":"`)
	if err != nil {
		return err
	}
	// The copies for import name the address the request reached, and so
	// vary with the headers that say it, which caches are told.
	forImport := func(spec servedSpec, mediaType string) echo.HandlerFunc {
		return func(c echo.Context) error {
			c.Response().Header().Set(echo.HeaderVary, "Host, X-Forwarded-Proto")
			return c.Blob(http.StatusOK, mediaType, spec.at(origin(c.Request(), trusted)))
		}
	}
	e.GET("/openapi.yaml", forImport(yamlSpec, "application/yaml"))
	e.GET("/openapi.json", forImport(jsonSpec, echo.MIMEApplicationJSON))
	// Swagger UI's own copy names no address but the page's: behind a proxy
	// that passes on another Host, the address of the request is not the one
	// the browser uses, and the page may only call its own (docsCSP).
	e.GET(docsSpecPath, func(c echo.Context) error {
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, jsonSpec.at("/"))
	})

	ui := echo.WrapHandler(v5emb.NewHandlerWithConfig(swgui.Config{
		Title:       "CRM API",
		SwaggerJSON: docsSpecPath,
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
	return nil
}

// servedSpec is the spec's text split around its server's URL, which each
// copy served names as the address it was fetched from: Postman's importer
// (and other generators) take the first server as the base URL, and the
// relative "/" gave them none ("http:////users/login").
type servedSpec struct{ before, after []byte }

// splitAtServer finds the first server's URL, which follows marker.
func splitAtServer(spec []byte, marker string) (servedSpec, error) {
	start := bytes.Index(spec, []byte(marker))
	if start < 0 {
		return servedSpec{}, fmt.Errorf("the spec's first server is not where it is expected (after %q)", marker)
	}
	start += len(marker)
	end := start + bytes.IndexAny(spec[start:], "\"\n")
	return servedSpec{before: spec[:start], after: spec[end:]}, nil
}

// at returns the spec naming base as its server.
func (s servedSpec) at(base string) []byte {
	return slices.Concat(s.before, []byte(base), s.after)
}

// docsSpecPath is where Swagger UI loads the spec from.
const docsSpecPath = "/docs/openapi.json"

// validHost is a host name or address with an optional port: the Host header
// goes into the document, so nothing that could break out of its string.
var validHost = regexp.MustCompile(`^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$`)

// origin is the address the request reached, as its client named it (a proxy
// in front passes the Host header on; one of the trusted proxies may say
// https in X-Forwarded-Proto), or "/" — this origin, whatever it is — when the
// Host header is not usable.
func origin(r *http.Request, trusted []*net.IPNet) string {
	if !validHost.MatchString(r.Host) {
		return "/"
	}
	scheme := "http"
	if r.TLS != nil || r.Header.Get(echo.HeaderXForwardedProto) == "https" && fromTrustedProxy(r, trusted) {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// fromTrustedProxy reports whether the request's connection comes from one of
// the trusted proxies' networks.
func fromTrustedProxy(r *http.Request, trusted []*net.IPNet) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	ip := net.ParseIP(host)
	return err == nil && ip != nil && slices.ContainsFunc(trusted, func(n *net.IPNet) bool { return n.Contains(ip) })
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
